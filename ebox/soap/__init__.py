"""The SOAP web services institutions publish through, secured by WS-Security."""
