// A crash between a snapshot's apply and the first streamed entry (tests to come).
