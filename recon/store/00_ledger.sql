-- recon's ledger. Money is DECIMAL(18,2). Entry tables (payments, allocations,
-- adjustments, due_changes, audit_log) are append-only: a correction is a new,
-- reversing row that names the row it reverses. Balances are derived (see queries).
--
-- Entry ids come from sequences, so they carry no PRIMARY KEY, and the entry tables
-- have no secondary indexes: DuckDB keeps ART indexes in memory and maintains them on
-- every insert, which made a million-claim posting slow and its memory grow, while
-- its zone maps already make a one-client scan fast (see docs/benchmarks.md).

CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS users (
    user_id     VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL,
    permissions VARCHAR NOT NULL          -- semicolon-separated, e.g. 'billing;reports'
);

CREATE TABLE IF NOT EXISTS insurance_providers (
    payer_id         VARCHAR PRIMARY KEY,
    name             VARCHAR NOT NULL,
    payer_identifier VARCHAR               -- the payer id an 835 carries (REF*2U / TRN03)
);

CREATE TABLE IF NOT EXISTS clients (
    client_id     VARCHAR PRIMARY KEY,
    first_name    VARCHAR NOT NULL,
    last_name     VARCHAR NOT NULL,
    date_of_birth DATE,
    copay         DECIMAL(18,2) NOT NULL
);

CREATE TABLE IF NOT EXISTS client_insurance (
    client_id VARCHAR NOT NULL,
    payer_id  VARCHAR NOT NULL,
    member_id VARCHAR,
    priority  VARCHAR NOT NULL,           -- primary | secondary | tertiary
    copay     DECIMAL(18,2),              -- NULL: the client's own co-pay
    PRIMARY KEY (client_id, payer_id)
);

-- client_amt_due / ins_amt_due are the amounts as billed; later changes (an ERA's
-- patient responsibility) are rows of due_changes, never updates here.
CREATE TABLE IF NOT EXISTS invoices (
    invoice_id     VARCHAR PRIMARY KEY,
    client_id      VARCHAR NOT NULL,
    service_date   DATE NOT NULL,
    service_code   VARCHAR NOT NULL,
    units          INTEGER NOT NULL,
    fee            DECIMAL(18,2) NOT NULL,
    payer_id       VARCHAR,
    client_amt_due DECIMAL(18,2) NOT NULL,
    ins_amt_due    DECIMAL(18,2) NOT NULL,
    claim_id       VARCHAR NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS payment_seq START 1;
CREATE SEQUENCE IF NOT EXISTS entry_seq START 1;

CREATE TABLE IF NOT EXISTS payments (
    payment_id      VARCHAR PRIMARY KEY,
    kind            VARCHAR NOT NULL,     -- insurance | client
    client_id       VARCHAR NOT NULL,
    payer_id        VARCHAR,
    method          VARCHAR NOT NULL,     -- insurance | insurance-check | insurance-eft-ach | insurance-card
    amount          DECIMAL(18,2) NOT NULL,
    received_on     DATE NOT NULL,
    payment_number  VARCHAR,
    notes           VARCHAR,
    user_id         VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    idempotency_key VARCHAR UNIQUE,
    request_hash    VARCHAR,
    remittance_id   VARCHAR,              -- set when posted from an 835
    processor       VARCHAR,              -- stripe | vantage (card payments)
    processor_ref   VARCHAR,
    card_brand      VARCHAR,
    card_last4      VARCHAR,
    reverses        VARCHAR,              -- a void: the payment this row reverses
    reason          VARCHAR               -- why (voids)
);

CREATE TABLE IF NOT EXISTS allocations (
    allocation_id BIGINT NOT NULL,
    payment_id    VARCHAR NOT NULL,
    invoice_id    VARCHAR NOT NULL,
    client_id     VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,       -- insurance | client (which Paid column)
    amount        DECIMAL(18,2) NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS adjustments (
    adjustment_id BIGINT NOT NULL,
    invoice_id    VARCHAR NOT NULL,
    client_id     VARCHAR NOT NULL,
    payment_id    VARCHAR,
    remittance_id VARCHAR,
    group_code    VARCHAR NOT NULL,       -- CO, PR, OA, PI, CR, or WO for a manual write-off
    reason_code   VARCHAR NOT NULL,
    amount        DECIMAL(18,2) NOT NULL,
    written_off   BOOLEAN NOT NULL,       -- counts in Ins Adjusted
    reverses      BIGINT,
    user_id       VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    note          VARCHAR
);

CREATE TABLE IF NOT EXISTS due_changes (
    change_id          BIGINT NOT NULL,
    invoice_id         VARCHAR NOT NULL,
    client_id          VARCHAR NOT NULL,
    client_amt_due_delta DECIMAL(18,2) NOT NULL,
    ins_amt_due_delta    DECIMAL(18,2) NOT NULL,
    remittance_id      VARCHAR,
    reverses           BIGINT,
    user_id            VARCHAR NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    reason             VARCHAR
);

CREATE TABLE IF NOT EXISTS audit_log (
    audit_id  BIGINT NOT NULL,
    logged_at TIMESTAMP NOT NULL,
    user_id   VARCHAR NOT NULL,
    action    VARCHAR NOT NULL,
    entity    VARCHAR NOT NULL,
    entity_id VARCHAR,
    detail    VARCHAR
);
