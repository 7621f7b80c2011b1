"""SMTP in: the aiosmtpd handler (RCPT and DATA hooks only) and the listening server."""
