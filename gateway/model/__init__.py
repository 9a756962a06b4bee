"""Plain data of the gateway: envelopes and canonical record helpers."""
