"""The result as text and files: JSON (the contract), CSV, tables, number formatting, the HTML
report, and atomic file writing. Below `cli`, above `scheduling`; never touches argv or streams."""
