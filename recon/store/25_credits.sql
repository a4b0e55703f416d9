-- Credit balances worked from the worklist (recon.remit.worklist, kind overpayment).
-- A credit balance is money on an invoice above what is due there (open amount below
-- zero), or a payment's unapplied credit. It is derived from the ledger, so the
-- worklist item needs no row of its own; working it (a refund to the payer, or
-- applying the credit to another open invoice of the client) writes ledger entries
-- (a negative payment, or moved allocations) and one row here per source payment,
-- append-only, in the same transaction, with an audit entry.

CREATE TABLE IF NOT EXISTS credit_actions (
    action_id         BIGINT NOT NULL,      -- entry_seq
    credit_id         VARCHAR NOT NULL,     -- the worklist item: overpayment:INVOICE[:client] or overpayment:payment:PAY
    action            VARCHAR NOT NULL,     -- refund | apply
    client_id         VARCHAR NOT NULL,
    invoice_id        VARCHAR,              -- the invoice whose credit it was, NULL for unapplied credit
    responsibility    VARCHAR NOT NULL,     -- insurance | client (which side of the invoice)
    source_payment_id VARCHAR,              -- the payment whose money was refunded or moved
    payer_id          VARCHAR,              -- who the money came from (and a refund goes to)
    amount            DECIMAL(18,2) NOT NULL,
    target_invoice_id VARCHAR,              -- apply: the invoice the credit went to
    refund_payment_id VARCHAR,              -- refund: the negative payment entry
    reason            VARCHAR NOT NULL,
    user_id           VARCHAR NOT NULL,
    "at"              TIMESTAMP NOT NULL
);
