-- Card charges and refunds through the practice's processor (recon/cards.py).
-- A row is written and committed BEFORE the processor is called, with the
-- idempotency key the call will use: whatever happens next (decline, timeout,
-- crash), the attempt stays visible and a retry reuses its key instead of
-- charging again. No card number or CVC is ever stored: brand and last 4 only.

CREATE TABLE IF NOT EXISTS card_attempts (
    attempt_id      VARCHAR PRIMARY KEY,
    payment_id      VARCHAR NOT NULL,     -- reserved before the call; the payment when recorded
    idempotency_key VARCHAR NOT NULL,     -- sent to the processor; reused by a retry
    request_key     VARCHAR,              -- the caller's PaymentRequest.idempotency_key
    request_hash    VARCHAR NOT NULL,     -- what was asked (a retry must ask the same)
    client_id       VARCHAR NOT NULL,
    payer_id        VARCHAR NOT NULL,
    amount          DECIMAL(18,2) NOT NULL,
    processor       VARCHAR NOT NULL,     -- stripe | vantage
    status          VARCHAR NOT NULL,     -- pending | succeeded | declined | error | unknown
                                          -- | refunded (charged, not recordable, given back)
                                          -- | unrecorded (charged, not recorded, refund failed)
    processor_ref   VARCHAR,
    card_brand      VARCHAR,
    card_last4      VARCHAR,
    decline_code    VARCHAR,
    reason          VARCHAR,              -- the processor's words (decline) or what went wrong
    refund_key      VARCHAR,              -- set before refunding a charge that was not recorded
    refund_ref      VARCHAR,
    user_id         VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS card_attempts_request ON card_attempts (request_key);
CREATE INDEX IF NOT EXISTS card_attempts_payment ON card_attempts (payment_id);

-- Refunds of recorded card payments (a void refunds first, then reverses).
CREATE TABLE IF NOT EXISTS card_refunds (
    refund_id       VARCHAR PRIMARY KEY,
    payment_id      VARCHAR NOT NULL,     -- the card payment being voided
    idempotency_key VARCHAR NOT NULL,     -- sent to the processor; reused by a retry
    processor       VARCHAR NOT NULL,
    charge_ref      VARCHAR NOT NULL,
    amount          DECIMAL(18,2) NOT NULL,
    status          VARCHAR NOT NULL,     -- pending | succeeded | error | unknown
    processor_ref   VARCHAR,
    reason          VARCHAR,
    reversal_id     VARCHAR,              -- the reversing entry, once recorded
    user_id         VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS card_refunds_payment ON card_refunds (payment_id);
