"""kubectl multus: diagnose and fix Multus CNI installs."""

__version__ = "0.1.0"
