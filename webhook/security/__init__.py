"""Abuse and attack protections shared by the gateway's rooms: who a client is (its address,
behind trusted proxies only), request body limits, outgoing-request guard (no private targets),
proof of work, and the per-address and global limits of messages and filings."""
