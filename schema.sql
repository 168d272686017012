-- The whole Postgres schema of the order engine: the read models the
-- projections build and the queries read. Applied at every start; every
-- statement is idempotent. Read-model tables live in the schema "rm" and are
-- always schema-qualified, so a rebuild can create the same tables under
-- another schema name and swap it in.

CREATE SCHEMA IF NOT EXISTS rm;

-- Where each projection stands: per event-store shard, the last sequence of
-- that shard's stream it applied, written in the same transaction as the rows
-- it changed. A row from before sharding (no shard column) is shard 0, the
-- one stream of a one-shard store.
CREATE TABLE IF NOT EXISTS rm.checkpoints (
    projection text        NOT NULL,
    shard      int         NOT NULL DEFAULT 0,
    last_seq   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, shard)
);
ALTER TABLE rm.checkpoints ADD COLUMN IF NOT EXISTS shard int NOT NULL DEFAULT 0;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'rm.checkpoints'::regclass AND contype = 'p' AND cardinality(conkey) = 2) THEN
        ALTER TABLE rm.checkpoints DROP CONSTRAINT IF EXISTS checkpoints_pkey;
        ALTER TABLE rm.checkpoints ADD PRIMARY KEY (projection, shard);
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS rm.orders (
    order_id         uuid        PRIMARY KEY,
    customer_id      text        NOT NULL,
    status           text        NOT NULL,
    currency         text        NOT NULL,
    total_cents      bigint      NOT NULL,
    refund_due_cents bigint      NOT NULL DEFAULT 0,
    version          bigint      NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- What partial refunds and returns refunded, apart from a cancellation's
-- refund_due_cents; amounts are in minor units of the order's currency.
ALTER TABLE rm.orders ADD COLUMN IF NOT EXISTS refunded_cents bigint NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS orders_newest ON rm.orders (created_at DESC, order_id DESC);
CREATE INDEX IF NOT EXISTS orders_by_status ON rm.orders (status, created_at DESC, order_id DESC);
CREATE INDEX IF NOT EXISTS orders_by_customer ON rm.orders (customer_id, created_at DESC, order_id DESC);

CREATE TABLE IF NOT EXISTS rm.order_lines (
    order_id         uuid   NOT NULL REFERENCES rm.orders ON DELETE CASCADE,
    line_no          int    NOT NULL,
    sku              text   NOT NULL,
    qty              bigint NOT NULL,
    unit_price_cents bigint NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
-- Units of the line that came back after delivery.
ALTER TABLE rm.order_lines ADD COLUMN IF NOT EXISTS returned_qty bigint NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS rm.inventory (
    sku        text        PRIMARY KEY,
    on_hand    bigint      NOT NULL,
    reserved   bigint      NOT NULL,
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS inventory_by_available ON rm.inventory ((on_hand - reserved), sku);

-- Events a projection could not apply after a few tries; the projection went
-- on without them. A retry applies the event again and marks it resolved.
CREATE TABLE IF NOT EXISTS rm.dead_letters (
    id          bigserial   PRIMARY KEY,
    projection  text        NOT NULL,
    seq         bigint      NOT NULL,
    subject     text        NOT NULL,
    event_type  text        NOT NULL,
    error       text        NOT NULL,
    attempts    int         NOT NULL,
    envelope    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    shard       int         NOT NULL DEFAULT 0,
    UNIQUE (projection, shard, seq)
);
-- Dead letters from before sharding are of shard 0.
ALTER TABLE rm.dead_letters ADD COLUMN IF NOT EXISTS shard int NOT NULL DEFAULT 0;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint
               WHERE conrelid = 'rm.dead_letters'::regclass AND conname = 'dead_letters_projection_seq_key') THEN
        ALTER TABLE rm.dead_letters DROP CONSTRAINT dead_letters_projection_seq_key;
        ALTER TABLE rm.dead_letters ADD CONSTRAINT dead_letters_projection_shard_seq_key UNIQUE (projection, shard, seq);
    END IF;
END $$;

-- Counters of the dashboard per time bucket (UTC minute and hour, taken from
-- the event's own time): orders_placed, orders_confirmed, orders_rejected
-- (currency '') and revenue_cents per currency (paid amounts less refunds
-- due). The projection adds to them in the transaction that moves the
-- checkpoint, and only for events above the order row's version, so a
-- replay counts nothing twice.
CREATE TABLE IF NOT EXISTS rm.order_buckets (
    granularity text        NOT NULL CHECK (granularity IN ('minute', 'hour')),
    bucket      timestamptz NOT NULL,
    metric      text        NOT NULL,
    currency    text        NOT NULL DEFAULT '',
    value       bigint      NOT NULL,
    PRIMARY KEY (granularity, bucket, metric, currency)
);

-- Webhooks (package webhooks): admin-registered endpoints that receive the
-- integration feed (docs/feed.md). They live in their own schema "hooks",
-- not in "rm": they are configuration and delivery state, not a read model
-- a rebuild could recreate from the event store.
CREATE SCHEMA IF NOT EXISTS hooks;

-- position is the last feed sequence the endpoint's worker handled
-- (delivered, filtered out, parked or dead-lettered), written with the
-- dead letter it may have filed. secret signs every delivery; it is shown
-- once, at registration.
CREATE TABLE IF NOT EXISTS hooks.endpoints (
    id          text        PRIMARY KEY,
    url         text        NOT NULL,
    secret      text        NOT NULL,
    event_types text[]      NOT NULL DEFAULT '{}',
    description text        NOT NULL DEFAULT '',
    position    bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Deliveries that failed every attempt (parked = false), and the later
-- events of the same order held behind them (parked = true) so that no
-- order's events reach the endpoint out of order. body is the exact JSON
-- that was (or will be) posted.
CREATE TABLE IF NOT EXISTS hooks.dead_letters (
    id          bigserial   PRIMARY KEY,
    endpoint_id text        NOT NULL REFERENCES hooks.endpoints (id) ON DELETE CASCADE,
    feed_seq    bigint      NOT NULL,
    event_id    text        NOT NULL,
    event_type  text        NOT NULL,
    order_id    text        NOT NULL,
    body        text        NOT NULL,
    attempts    int         NOT NULL DEFAULT 0,
    last_error  text        NOT NULL DEFAULT '',
    parked      boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, feed_seq)
);
CREATE INDEX IF NOT EXISTS dead_letters_endpoint_order ON hooks.dead_letters (endpoint_id, order_id);
