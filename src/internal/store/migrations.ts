/**
 * The jobs schema, as numbered migrations. Applied at start-up inside one transaction that
 * holds an advisory lock keyed by the schema name, so processes starting together take
 * turns and each migration runs exactly once.
 *
 * A released migration's text never changes: a database that applied it keeps what it ran,
 * and a new one must end up the same. So a migration that changes a function writes the
 * whole function again (migration 12's claim repeats migration 7's but for the position)
 * rather than building both from shared text, which a later edit would change under both.
 *
 * The file is longer than the others for the same reason: the migrations are one ordered,
 * frozen list, read top to bottom as the history of the schema, and splitting it would only
 * scatter that order.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { SchemaNotReady, SchemaTooNew } from "../../JobError.js"
import { debugSpan } from "../tracing/debugSpan.js"
import { toDatabaseError } from "./retryDatabase.js"

export interface Migration {
  readonly version: number
  readonly name: string
  readonly statements: (schema: string) => ReadonlyArray<string>
}

export const signalChannel = (schema: string) => `${schema}_signals`

export const migrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "create_jobs",
    statements: (s) => [
      `CREATE TABLE ${s}.jobs (
        id bigserial PRIMARY KEY,
        queue text NOT NULL,
        type text NOT NULL,
        args jsonb NOT NULL DEFAULT '{}',
        state text NOT NULL DEFAULT 'available'
          CHECK (state IN ('scheduled', 'available', 'executing', 'retryable', 'completed', 'discarded', 'cancelled')),
        priority smallint NOT NULL DEFAULT 0 CHECK (priority >= 0),
        attempt integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
        max_attempts integer NOT NULL DEFAULT 20 CHECK (max_attempts > 0),
        errors jsonb NOT NULL DEFAULT '[]',
        result jsonb,
        meta jsonb NOT NULL DEFAULT '{}',
        lease uuid,
        scheduled_at timestamptz NOT NULL DEFAULT now(),
        attempted_at timestamptz,
        attempted_by text,
        completed_at timestamptz,
        cancelled_at timestamptz,
        discarded_at timestamptz,
        inserted_at timestamptz NOT NULL DEFAULT now()
      )`,
      // The claim reads only this index: due jobs of one queue in the order they run.
      `CREATE INDEX jobs_claim_idx ON ${s}.jobs (queue, priority, scheduled_at, id) WHERE state = 'available'`,
      `CREATE INDEX jobs_stage_idx ON ${s}.jobs (scheduled_at, id) WHERE state IN ('scheduled', 'retryable')`,
      // Queue info, listings by state and pruning.
      `CREATE INDEX jobs_state_idx ON ${s}.jobs (state, queue, id)`,
      // A statement-level trigger wakes dispatchers for every insert, whoever inserts: one
      // notification per queue per statement, delivered only if the transaction commits.
      `CREATE FUNCTION ${s}.notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         PERFORM pg_notify('${signalChannel(s)}', json_build_object('kind', 'insert', 'queue', q.queue)::text)
         FROM (SELECT DISTINCT queue FROM inserted WHERE state = 'available') q;
         RETURN NULL;
       END $$`,
      `CREATE TRIGGER jobs_notify_inserted AFTER INSERT ON ${s}.jobs
       REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION ${s}.notify_inserted()`,
    ],
  },
  {
    version: 2,
    name: "create_nodes",
    statements: (s) => [
      `CREATE TABLE ${s}.nodes (
        id text PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        queues jsonb NOT NULL DEFAULT '[]',
        started_at timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL
      )`,
      // How often a job was found orphaned by a dead node: a job that keeps killing its
      // process is discarded after a few rescues instead of taking down node after node.
      `ALTER TABLE ${s}.jobs ADD COLUMN rescues integer NOT NULL DEFAULT 0`,
    ],
  },
  {
    version: 3,
    name: "create_leader_and_queues",
    statements: (s) => [
      `CREATE TABLE ${s}.leader (
        name text PRIMARY KEY,
        node text NOT NULL,
        elected_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )`,
      // Cluster-wide queue state: a node starting later reads it (a paused queue starts paused).
      `CREATE TABLE ${s}.queues (
        name text PRIMARY KEY,
        paused boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL
      )`,
    ],
  },
  {
    version: 4,
    name: "unique_jobs",
    statements: (s) => [
      `ALTER TABLE ${s}.jobs ADD COLUMN unique_key text, ADD COLUMN unique_states text[]`,
      // At most one job per key among the states that key cares about; inserts race safely
      // on this index.
      `CREATE UNIQUE INDEX jobs_unique_idx ON ${s}.jobs (unique_key)
       WHERE unique_key IS NOT NULL AND state = ANY (unique_states)`,
    ],
  },
  {
    version: 5,
    name: "suspect_claims",
    statements: (s) => [
      // Jobs rescued before are claimed apart from the rest; they are few, so their own
      // small index spares the claim a walk through the whole backlog to find them.
      `CREATE INDEX jobs_suspect_idx ON ${s}.jobs (queue, priority, scheduled_at, id)
       WHERE state = 'available' AND rescues > 0`,
    ],
  },
  {
    version: 6,
    name: "recurring_work",
    statements: (s) => [
      // Jobs aimed at one resource (a post, an invoice): found, moved and cancelled together
      // while they wait, so only pending jobs are indexed.
      `ALTER TABLE ${s}.jobs ADD COLUMN resource_type text, ADD COLUMN resource_id text`,
      `CREATE INDEX jobs_resource_idx ON ${s}.jobs (resource_type, resource_id, scheduled_at)
       WHERE resource_id IS NOT NULL AND state IN ('scheduled', 'available', 'retryable', 'executing')`,
      // Cron schedules. A tick is enqueued in the transaction that moves last_tick_at past it,
      // guarded by the value read before: racing enqueuers cannot both enqueue one tick.
      `CREATE TABLE ${s}.schedules (
        name text PRIMARY KEY,
        expression text NOT NULL,
        timezone text,
        type text NOT NULL,
        queue text NOT NULL,
        args jsonb NOT NULL,
        priority smallint NOT NULL,
        max_attempts integer NOT NULL,
        meta jsonb NOT NULL DEFAULT '{}',
        missed text NOT NULL CHECK (missed IN ('skip', 'runOnce', 'backfill')),
        backfill integer NOT NULL DEFAULT 0,
        grace_ms bigint NOT NULL,
        paused boolean NOT NULL DEFAULT false,
        last_tick_at timestamptz NOT NULL,
        last_run_at timestamptz,
        last_job_id bigint,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`,
      // Stateful recurring tasks: the state each run hands to the next, and who runs it now.
      `CREATE TABLE ${s}.tasks (
        id text PRIMARY KEY,
        name text NOT NULL,
        every_ms bigint,
        expression text,
        timezone text,
        hidden boolean NOT NULL DEFAULT false,
        state jsonb NOT NULL,
        status text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'running')),
        run_by text,
        run_token uuid,
        run_started_at timestamptz,
        next_run_at timestamptz,
        last_run_at timestamptz,
        successes integer NOT NULL DEFAULT 0,
        failures integer NOT NULL DEFAULT 0,
        last_error text,
        started_at timestamptz NOT NULL,
        restarted_at timestamptz,
        updated_at timestamptz NOT NULL
      )`,
      // The history of runs, keyed by the task's stable id (a renamed task keeps it).
      `CREATE TABLE ${s}.task_runs (
        id bigserial PRIMARY KEY,
        task_id text NOT NULL,
        task_name text NOT NULL,
        node text NOT NULL,
        trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
        outcome text NOT NULL CHECK (outcome IN ('success', 'failure', 'defect', 'interrupted')),
        error text,
        state jsonb,
        started_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL
      )`,
      `CREATE INDEX task_runs_task_idx ON ${s}.task_runs (task_id, id)`,
    ],
  },
  {
    version: 7,
    name: "claim_function",
    statements: (s) => [
      // The claim, as a function so that its plan cannot depend on the table's statistics.
      // After a quiet spell the statistics say almost no job is available; when a burst
      // arrives, a planner that trusts them fetches every available row through a bitmap and
      // sorts them all for each claim, which is many times slower than walking the index. The
      // SET clauses apply only while the function runs and make the planner walk the claim
      // index in its order, whatever the statistics say.
      //
      // The claim commits without waiting for the WAL flush: if the database crashes before
      // the flush, the claim is lost and the job is simply available again, which is what a
      // crashed worker leads to anyway. Inserts and outcomes stay fully durable. (A local
      // setting of a variable the SET clauses do not name outlives the function, to the end
      // of the transaction.)
      //
      // Jobs rescued before (suspects: one of them may be what killed their node) are claimed
      // apart, at most p_suspects at a time, so that a poison job never takes the same
      // bystanders down with it twice and only the poison reaches maxRescues. The picked ids
      // are matched with = ANY (ARRAY(…)): the planner cannot know how many rows a LIMIT
      // computed from a subquery gives, and would otherwise join by hashing the whole table.
      `CREATE FUNCTION ${s}.claim_jobs(
         p_queue text, p_limit integer, p_at timestamptz, p_node text, p_lease uuid, p_suspects integer
       ) RETURNS SETOF ${s}.jobs LANGUAGE plpgsql
       SET enable_bitmapscan = off SET enable_seqscan = off SET enable_sort = off
       AS $$
       BEGIN
         PERFORM set_config('synchronous_commit', 'off', true);
         RETURN QUERY
         WITH suspects AS (
           SELECT id FROM ${s}.jobs
           WHERE queue = p_queue AND state = 'available' AND rescues > 0
           ORDER BY priority, scheduled_at, id
           LIMIT p_suspects
           FOR UPDATE SKIP LOCKED
         ),
         others AS (
           SELECT id FROM ${s}.jobs
           WHERE queue = p_queue AND state = 'available' AND rescues = 0
           ORDER BY priority, scheduled_at, id
           LIMIT p_limit - (SELECT count(*) FROM suspects)::integer
           FOR UPDATE SKIP LOCKED
         ),
         picked AS (SELECT id FROM suspects UNION ALL SELECT id FROM others)
         UPDATE ${s}.jobs j
         SET state = 'executing', attempt = j.attempt + 1, attempted_at = p_at, attempted_by = p_node, lease = p_lease
         WHERE j.id = ANY (ARRAY(SELECT id FROM picked))
         RETURNING j.*;
       END
       $$`,
    ],
  },
  {
    version: 8,
    name: "state_index_without_available",
    statements: (s) => [
      // Available jobs are found through the claim index; keeping them out of the state index
      // spares every insert one index entry, a noticeable share of a bulk insert. The other
      // states stay indexed for listings, pruning, the rescuer and queue counts.
      `DROP INDEX ${s}.jobs_state_idx`,
      `CREATE INDEX jobs_state_idx ON ${s}.jobs (state, queue, id) WHERE state <> 'available'`,
    ],
  },
  {
    version: 9,
    name: "queue_starts",
    statements: (s) => [
      // The attempts that claims of rate-limited queues started, one row per claim, each
      // kept one period. Counting the queue's jobs by attempted_at instead needs an index no
      // claim or completion should pay for, reads every job of the queue, completed ones
      // included, and counts a retried job once however many of its attempts started. Starts
      // from before this migration are not here: the first period after it may start up to
      // one limit more.
      `CREATE TABLE ${s}.queue_starts (
        queue text NOT NULL,
        started_at timestamptz NOT NULL,
        count integer NOT NULL CHECK (count > 0)
      )`,
      `CREATE INDEX queue_starts_idx ON ${s}.queue_starts (queue, started_at)`,
    ],
  },
  {
    version: 10,
    name: "outcome_functions",
    statements: (s) => {
      // The statements that write outcomes, as functions whose plans cannot depend on the
      // table's statistics. As named prepared statements, a connection keeps the generic plan
      // it made first: made while the table is small (a fresh start, or after a quiet spell),
      // it reads the whole table and hashes it for every batch of outcomes, and each write
      // grows slower with the table until an ANALYZE makes the plan again. Here the jobs are
      // looked up by id in the primary key, then matched with their outcomes by hashing. The state
      // guard is written so that no index serves it, or the planner, trusting statistics that
      // say almost nothing is executing, would walk the state index instead.
      const plan =
        "SET enable_seqscan = off SET enable_bitmapscan = off SET enable_nestloop = off SET enable_mergejoin = off"
      return [
        `CREATE FUNCTION ${s}.finish_jobs(p_outcomes jsonb) RETURNS SETOF bigint LANGUAGE plpgsql ${plan} AS $$
         BEGIN
           RETURN QUERY
           UPDATE ${s}.jobs j SET
             state = x.state,
             queue = COALESCE(x.dead_letter_queue, j.queue),
             attempt = CASE WHEN x.dead_letter_queue IS NULL THEN j.attempt + x.attempt_delta ELSE 0 END,
             meta = CASE WHEN x.dead_letter_queue IS NULL THEN j.meta
               ELSE j.meta || jsonb_build_object('deadLetteredFrom', j.queue) END,
             result = CASE WHEN x.state = 'completed' THEN x.result ELSE j.result END,
             errors = CASE WHEN x.error IS NULL THEN j.errors ELSE j.errors || jsonb_build_array(x.error) END,
             scheduled_at = COALESCE(x.scheduled_at, j.scheduled_at),
             completed_at = CASE WHEN x.state = 'completed' THEN x.at ELSE j.completed_at END,
             cancelled_at = CASE WHEN x.state = 'cancelled' THEN x.at ELSE j.cancelled_at END,
             discarded_at = CASE WHEN x.state = 'discarded' THEN x.at ELSE j.discarded_at END,
             lease = NULL
           FROM jsonb_to_recordset(p_outcomes) AS x(id bigint, lease uuid, state text, attempt_delta integer,
             result jsonb, error jsonb, scheduled_at timestamptz, at timestamptz, dead_letter_queue text)
           WHERE j.id = ANY (ARRAY(SELECT (e ->> 'id')::bigint FROM jsonb_array_elements(p_outcomes) AS e))
             AND j.id = x.id AND j.lease = x.lease AND (j.state = 'executing') IS TRUE
           RETURNING j.id;
         END $$`,
        `CREATE FUNCTION ${s}.complete_jobs(p_ids bigint[], p_leases uuid[], p_at timestamptz[])
         RETURNS SETOF bigint LANGUAGE plpgsql ${plan} AS $$
         BEGIN
           RETURN QUERY
           UPDATE ${s}.jobs j SET state = 'completed', completed_at = x.at, result = NULL, lease = NULL
           FROM unnest(p_ids, p_leases, p_at) AS x(id, lease, at)
           WHERE j.id = ANY (p_ids) AND j.id = x.id AND j.lease = x.lease AND (j.state = 'executing') IS TRUE
           RETURNING j.id;
         END $$`,
        // Deleting a row writes no new version and no index entry: what graphile-worker does
        // with every completed job, and what a retention of zero asks for.
        `CREATE FUNCTION ${s}.delete_jobs(p_ids bigint[], p_leases uuid[])
         RETURNS SETOF bigint LANGUAGE plpgsql ${plan} AS $$
         BEGIN
           RETURN QUERY
           DELETE FROM ${s}.jobs j
           USING unnest(p_ids, p_leases) AS x(id, lease)
           WHERE j.id = ANY (p_ids) AND j.id = x.id AND j.lease = x.lease AND (j.state = 'executing') IS TRUE
           RETURNING j.id;
         END $$`,
      ]
    },
  },
  {
    version: 11,
    name: "prune_by_finish_time",
    statements: (s) => [
      // The pruner asks for finished jobs of one state past a time. Without an index of
      // finish times every round reads the whole table, even when nothing is due, at a cost
      // that grows with every job kept. Finished jobs have an index of their own in
      // finish-time order, so a round reads only what it deletes.
      `CREATE INDEX jobs_finished_idx ON ${s}.jobs (state, (COALESCE(completed_at, cancelled_at, discarded_at)))
       WHERE state IN ('completed', 'cancelled', 'discarded')`,
      // The state index keeps the unfinished states it served: executing (rescues, global
      // limits, by queue) and the waiting ones (listings by queue). A completion then adds one
      // entry to the indexes besides the primary key's, not two.
      `DROP INDEX ${s}.jobs_state_idx`,
      `CREATE INDEX jobs_state_idx ON ${s}.jobs (state, queue, id) WHERE state IN ('scheduled', 'executing', 'retryable')`,
      // The plan walks the finished index in order whatever the statistics say, as the claim's
      // does. A job retried by hand while its round runs keeps its row: the delete re-checks
      // the state of the row it waited for.
      `CREATE FUNCTION ${s}.prune_jobs(p_state text, p_before timestamptz, p_limit integer) RETURNS integer
       LANGUAGE plpgsql SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off AS $$
       DECLARE
         pruned integer;
       BEGIN
         WITH doomed AS (
           SELECT id FROM ${s}.jobs
           WHERE state = p_state AND COALESCE(completed_at, cancelled_at, discarded_at) < p_before
           ORDER BY state, COALESCE(completed_at, cancelled_at, discarded_at)
           LIMIT p_limit
         )
         DELETE FROM ${s}.jobs j USING doomed WHERE j.id = doomed.id AND j.state = p_state;
         GET DIAGNOSTICS pruned = ROW_COUNT;
         RETURN pruned;
       END $$`,
    ],
  },
  {
    version: 12,
    name: "claim_from_a_position",
    statements: (s) => [
      // A claim that reads the claim index from its start skips, one by one, the dead entries
      // of every job claimed since the last vacuum: thousands of index pages for a claim on an
      // empty queue, once the server's vacuum cannot keep up with a fast queue. So a
      // dispatcher claims from a position: past the last job it claimed, or back where a
      // signal says jobs became available. The
      // row comparison is a bound of the index scan, so the scan starts there. Everything
      // else is migration 7's claim; (-1, '-infinity', 0) is before every job.
      `CREATE FUNCTION ${s}.claim_jobs(
         p_queue text, p_limit integer, p_at timestamptz, p_node text, p_lease uuid, p_suspects integer,
         p_after_priority integer, p_after_at timestamptz, p_after_id bigint
       ) RETURNS SETOF ${s}.jobs LANGUAGE plpgsql
       SET enable_bitmapscan = off SET enable_seqscan = off SET enable_sort = off
       AS $$
       BEGIN
         PERFORM set_config('synchronous_commit', 'off', true);
         RETURN QUERY
         WITH suspects AS (
           SELECT id FROM ${s}.jobs
           WHERE queue = p_queue AND state = 'available' AND rescues > 0
           ORDER BY priority, scheduled_at, id
           LIMIT p_suspects
           FOR UPDATE SKIP LOCKED
         ),
         others AS (
           SELECT id FROM ${s}.jobs
           WHERE queue = p_queue AND state = 'available' AND rescues = 0
             AND (priority, scheduled_at, id) > (p_after_priority::smallint, p_after_at, p_after_id)
           ORDER BY priority, scheduled_at, id
           LIMIT p_limit - (SELECT count(*) FROM suspects)::integer
           FOR UPDATE SKIP LOCKED
         ),
         picked AS (SELECT id FROM suspects UNION ALL SELECT id FROM others)
         UPDATE ${s}.jobs j
         SET state = 'executing', attempt = j.attempt + 1, attempted_at = p_at, attempted_by = p_node, lease = p_lease
         WHERE j.id = ANY (ARRAY(SELECT id FROM picked))
         RETURNING j.*;
       END
       $$`,
      // Insert signals say where the new jobs are: the lowest priority number and the earliest
      // due time among them (epoch milliseconds, rounded down), a position at or before each.
      // An infinite due time sends no time, which sends the dispatcher back to the start.
      `CREATE OR REPLACE FUNCTION ${s}.notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         PERFORM pg_notify('${signalChannel(s)}', json_build_object(
           'kind', 'insert', 'queue', q.queue, 'priority', q.priority, 'at', q.at)::text)
         FROM (
           SELECT queue, min(priority) AS priority,
             CASE WHEN isfinite(min(scheduled_at)) THEN floor(extract(epoch FROM min(scheduled_at)) * 1000)::float8 END AS at
           FROM inserted WHERE state = 'available' GROUP BY queue
         ) q;
         RETURN NULL;
       END $$`,
    ],
  },
  {
    version: 13,
    name: "stored_queue_concurrency",
    statements: (s) => [
      // A cluster-wide scale is stored like a pause: a queue signal is only a hint to re-read
      // this row, since anyone who can connect can send one. NULL: each node's own config.
      `ALTER TABLE ${s}.queues ADD COLUMN concurrency integer CHECK (concurrency BETWEEN 1 AND 10000)`,
    ],
  },
  {
    version: 14,
    name: "higher_priority_first",
    statements: (s) => [
      // Higher priorities now run first (0 stays the default, negatives run after it). Stored
      // priorities were 0 to 32,767, lower first: negated, they keep their order, fit the
      // smallint, and the usual 0 stays 0, so only the rows that set a priority are written.
      `ALTER TABLE ${s}.jobs DROP CONSTRAINT IF EXISTS jobs_priority_check`,
      `UPDATE ${s}.jobs SET priority = -priority WHERE priority <> 0`,
      `UPDATE ${s}.schedules SET priority = -priority WHERE priority <> 0`,
      // The claim order is (-priority, scheduled_at, id), ascending, so that a claim position
      // stays one row comparison that bounds the index scan (a descending column cannot be
      // compared in one row with ascending ones). The negation is taken as an integer, since
      // -(-32768) does not fit a smallint.
      `DROP INDEX ${s}.jobs_claim_idx`,
      `DROP INDEX ${s}.jobs_suspect_idx`,
      `CREATE INDEX jobs_claim_idx ON ${s}.jobs (queue, (-priority::integer), scheduled_at, id)
       WHERE state = 'available'`,
      `CREATE INDEX jobs_suspect_idx ON ${s}.jobs (queue, (-priority::integer), scheduled_at, id)
       WHERE state = 'available' AND rescues > 0`,
      // Migration 7's claim, without a position, is no longer called.
      `DROP FUNCTION ${s}.claim_jobs(text, integer, timestamptz, text, uuid, integer)`,
      // Migration 12's claim in the new order. p_after_priority is the position's priority as
      // a user sees it; 32768 (above every priority) is before every job.
      `CREATE OR REPLACE FUNCTION ${s}.claim_jobs(
         p_queue text, p_limit integer, p_at timestamptz, p_node text, p_lease uuid, p_suspects integer,
         p_after_priority integer, p_after_at timestamptz, p_after_id bigint
       ) RETURNS SETOF ${s}.jobs LANGUAGE plpgsql
       SET enable_bitmapscan = off SET enable_seqscan = off SET enable_sort = off
       AS $$
       BEGIN
         PERFORM set_config('synchronous_commit', 'off', true);
         RETURN QUERY
         WITH suspects AS (
           SELECT id FROM ${s}.jobs
           WHERE queue = p_queue AND state = 'available' AND rescues > 0
           ORDER BY (-priority::integer), scheduled_at, id
           LIMIT p_suspects
           FOR UPDATE SKIP LOCKED
         ),
         others AS (
           SELECT id FROM ${s}.jobs
           WHERE queue = p_queue AND state = 'available' AND rescues = 0
             AND ((-priority::integer), scheduled_at, id) > (-p_after_priority, p_after_at, p_after_id)
           ORDER BY (-priority::integer), scheduled_at, id
           LIMIT p_limit - (SELECT count(*) FROM suspects)::integer
           FOR UPDATE SKIP LOCKED
         ),
         picked AS (SELECT id FROM suspects UNION ALL SELECT id FROM others)
         UPDATE ${s}.jobs j
         SET state = 'executing', attempt = j.attempt + 1, attempted_at = p_at, attempted_by = p_node, lease = p_lease
         WHERE j.id = ANY (ARRAY(SELECT id FROM picked))
         RETURNING j.*;
       END
       $$`,
      // Insert signals point at the first of the new jobs in the new order: the highest priority.
      `CREATE OR REPLACE FUNCTION ${s}.notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         PERFORM pg_notify('${signalChannel(s)}', json_build_object(
           'kind', 'insert', 'queue', q.queue, 'priority', q.priority, 'at', q.at)::text)
         FROM (
           SELECT queue, max(priority) AS priority,
             CASE WHEN isfinite(min(scheduled_at)) THEN floor(extract(epoch FROM min(scheduled_at)) * 1000)::float8 END AS at
           FROM inserted WHERE state = 'available' GROUP BY queue
         ) q;
         RETURN NULL;
       END $$`,
    ],
  },
  {
    version: 15,
    name: "filter_indexes",
    statements: (s) => [
      // Listings and bulk actions filter by JSON containment (`args @> …`, and `meta @> …`,
      // which also finds a cron schedule's jobs). jsonb_path_ops indexes only what `@>` asks,
      // and is the smaller and faster of the two GIN kinds for it. A rare match is then found
      // through the index instead of a walk of the whole table.
      // The args index holds only the states an operator searches by args (waiting for a later
      // time, failed, given up on): a job on the hot path (available, executing, completed)
      // writes no entry into it at insert, claim or completion, so the index costs the
      // throughput nothing. A search that names only these states is answered from it.
      `CREATE INDEX jobs_args_idx ON ${s}.jobs USING gin (args jsonb_path_ops)
       WHERE state IN ('scheduled', 'retryable', 'discarded', 'cancelled')`,
      `CREATE INDEX jobs_meta_idx ON ${s}.jobs USING gin (meta jsonb_path_ops)`,
    ],
  },
  {
    version: 16,
    name: "queue_management",
    statements: (s) => [
      // What each live node runs and can run, renewed with its heartbeat: the queues with their
      // settings as that node holds them, and the job types it has handlers for. The cluster's
      // queue listing and its orphans are read from here.
      `ALTER TABLE ${s}.nodes ADD COLUMN queue_configs jsonb NOT NULL DEFAULT '{}', ADD COLUMN handlers jsonb NOT NULL DEFAULT '[]'`,
      // A queue's own retention per finished state, in milliseconds, over the runtime's default.
      `ALTER TABLE ${s}.queues ADD COLUMN prune jsonb`,
      // Migration 11's prune, for one queue (p_queue) or for every queue but some (p_skip): the
      // queues with a retention of their own, and the paused ones, whose pruning waits.
      `CREATE FUNCTION ${s}.prune_queue_jobs(
         p_state text, p_before timestamptz, p_limit integer, p_queue text, p_skip text[]
       ) RETURNS integer
       LANGUAGE plpgsql SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off AS $$
       DECLARE
         pruned integer;
       BEGIN
         WITH doomed AS (
           SELECT id FROM ${s}.jobs
           WHERE state = p_state AND COALESCE(completed_at, cancelled_at, discarded_at) < p_before
             AND (p_queue IS NULL OR queue = p_queue) AND queue <> ALL (p_skip)
           ORDER BY state, COALESCE(completed_at, cancelled_at, discarded_at)
           LIMIT p_limit
         )
         DELETE FROM ${s}.jobs j USING doomed WHERE j.id = doomed.id AND j.state = p_state;
         GET DIAGNOSTICS pruned = ROW_COUNT;
         RETURN pruned;
       END $$`,
    ],
  },
  {
    version: 17,
    name: "task_registrations",
    statements: (s) => [
      // Which nodes have each task registered, for stats read from anywhere. A row outlives a
      // node that crashed; readers count only nodes with a recent heartbeat.
      `CREATE TABLE ${s}.task_nodes (
        task_id text NOT NULL,
        node text NOT NULL,
        registered_at timestamptz NOT NULL,
        PRIMARY KEY (task_id, node)
      )`,
      `CREATE INDEX task_nodes_node_idx ON ${s}.task_nodes (node)`,
    ],
  },
  {
    version: 18,
    name: "filter_indexes_for_fewer_rows",
    statements: (s) => [
      // Most jobs have no meta: leaving them out of the meta index spares their inserts and
      // every later version of their rows an entry. A filter on meta says `meta <> '{}'` too,
      // so that the planner knows this index covers it (a non-empty containment never
      // matches empty meta).
      `DROP INDEX ${s}.jobs_meta_idx`,
      `CREATE INDEX jobs_meta_idx ON ${s}.jobs USING gin (meta jsonb_path_ops) WHERE meta <> '{}'::jsonb`,
      // The resource index of migration 6 holds unfinished jobs only; a listing of a
      // resource's jobs in id order, finished ones included, has this one. Jobs aimed at no
      // resource are left out of it, so it costs them nothing.
      `CREATE INDEX jobs_resource_list_idx ON ${s}.jobs (resource_type, resource_id, id)
       WHERE resource_id IS NOT NULL`,
    ],
  },
  {
    version: 19,
    name: "task_controls",
    statements: (s) => [
      // Operators pause a task and ask for a run from any process, through the database: a
      // paused task is not started when due on any node, and a requested run is started by a
      // node that has the task registered, paused or not. The request stays until a run that
      // was claimed with it finishes, so a run cut short by a shutdown does not lose it.
      `ALTER TABLE ${s}.tasks ADD COLUMN paused boolean NOT NULL DEFAULT false,
       ADD COLUMN run_requested_at timestamptz`,
    ],
  },
  {
    version: 20,
    name: "progress_and_logs",
    statements: (s) => [
      // What a handler reports while it runs (Job.progress, Job.log): the last progress, of
      // the attempt that reported it, and the newest log lines of every attempt. Null and
      // empty cost a row nothing; the claim does not return them.
      `ALTER TABLE ${s}.jobs ADD COLUMN progress jsonb, ADD COLUMN logs jsonb NOT NULL DEFAULT '[]'::jsonb`,
    ],
  },
  {
    version: 21,
    name: "job_stats_and_queue_nodes",
    statements: (s) => [
      // The leader's aggregates of finished jobs, one row per minute (kept a day) and per hour
      // (kept 30 days), so that charts of throughput and latency read a few hundred rows
      // instead of the jobs. Latencies are histograms (bucket number → jobs, four buckets per
      // doubling of milliseconds): they add up, so an hour is the sum of its minutes and a
      // percentile of any span is read from the sum.
      `CREATE TABLE ${s}.job_stats (
        period text NOT NULL CHECK (period IN ('minute', 'hour')),
        start_at timestamptz NOT NULL,
        completed integer NOT NULL DEFAULT 0,
        failed integer NOT NULL DEFAULT 0,
        cancelled integer NOT NULL DEFAULT 0,
        wait jsonb NOT NULL DEFAULT '{}',
        run jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (period, start_at)
      )`,
      // A queue paused, resumed or scaled on one node, by name: the node follows its own row
      // as it follows the queue's cluster-wide one, applying whichever changed since it last
      // looked. Rows of nodes no longer alive are removed as new ones are written.
      `CREATE TABLE ${s}.queue_nodes (
        queue text NOT NULL,
        node text NOT NULL,
        paused boolean,
        concurrency integer CHECK (concurrency BETWEEN 1 AND 10000),
        paused_at timestamptz,
        PRIMARY KEY (queue, node)
      )`,
    ],
  },
  {
    version: 22,
    name: "errored_jobs_index",
    statements: (s) => [
      // A search in error text (the dashboard's error filter, `jobs list --error`) reads the
      // jobs that have errors in a state, not every job of the state: most jobs never fail,
      // and those are left out of the index, so it costs them nothing.
      `CREATE INDEX jobs_errored_idx ON ${s}.jobs (state, id) WHERE errors <> '[]'::jsonb`,
    ],
  },
]

/** A stable 63-bit key for the advisory lock, derived from the schema name (FNV-1a). */
export const lockKey = (name: string): string => {
  let hash = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(`effect-jobs:${name}`)) {
    hash ^= BigInt(byte)
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return (hash & 0x7fffffffffffffffn).toString()
}

/** Brings the schema up to `target` (defaults to the newest migration); answers the versions applied. */
export const migrate = (sql: SqlClient, schema: string, target?: number) =>
  sql
    .withTransaction(
      Effect.gen(function* () {
        yield* sql.unsafe(`SELECT pg_advisory_xact_lock(${lockKey(schema)})`)
        yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
        yield* sql.unsafe(
          `CREATE TABLE IF NOT EXISTS ${schema}.migrations (
             version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
        )
        const rows = yield* sql.unsafe<{ version: number }>(`SELECT version FROM ${schema}.migrations`)
        const applied = new Set(rows.map((r) => Number(r.version)))
        // A newer library may have changed tables this one writes: refuse rather than corrupt them.
        const found = Math.max(0, ...applied)
        const supported = migrations[migrations.length - 1]!.version
        if (found > supported) return yield* new SchemaTooNew({ schema, found, supported })
        const pending = migrations.filter(
          (m) => !applied.has(m.version) && m.version <= (target ?? supported),
        )
        for (const migration of pending) {
          for (const statement of migration.statements(schema)) yield* sql.unsafe(statement)
          yield* sql.unsafe(`INSERT INTO ${schema}.migrations (version, name) VALUES ($1, $2)`, [
            migration.version,
            migration.name,
          ])
        }
        return pending.map((m) => m.version)
      }),
    )
    .pipe(debugSpan("effect-jobs.migrate", { schema }))

/** The newest migration this version of the library knows. */
export const latestVersion = Math.max(...migrations.map((m) => m.version))

/**
 * Fails with `SchemaNotReady` unless the schema has exactly the migrations this version
 * knows: a client that does not migrate must not write to tables that are missing or older,
 * nor to ones a newer version has changed in ways it does not know. Reads only.
 */
export const checkSchemaLevel = (sql: SqlClient, schema: string) =>
  Effect.gen(function* () {
    const [table] = yield* sql.unsafe<{ exists: string | null }>(`SELECT to_regclass($1)::text AS exists`, [
      `${schema}.migrations`,
    ])
    const applied =
      table?.exists == null
        ? new Set<number>()
        : new Set(
            (yield* sql.unsafe<{ version: number }>(`SELECT version FROM ${schema}.migrations`)).map((r) =>
              Number(r.version),
            ),
          )
    const newest = Math.max(0, ...applied)
    if (newest > latestVersion) {
      return yield* new SchemaNotReady({ schema, found: newest, expected: latestVersion })
    }
    const missing = migrations.find((m) => !applied.has(m.version))
    if (missing !== undefined) {
      return yield* new SchemaNotReady({ schema, found: missing.version - 1, expected: latestVersion })
    }
  }).pipe(
    Effect.catchTag("SqlError", (error) =>
      Effect.fail(toDatabaseError("reading the jobs schema's migrations")(error)),
    ),
  )

/** A migration as the schema records it. */
export interface AppliedMigration {
  readonly version: number
  readonly name: string
  readonly appliedAt: Date
}

/** The migrations the schema has applied, oldest first; none when it has no migrations table. Reads only. */
export const appliedMigrations = (sql: SqlClient, schema: string) =>
  Effect.gen(function* () {
    const [table] = yield* sql.unsafe<{ exists: string | null }>(`SELECT to_regclass($1)::text AS exists`, [
      `${schema}.migrations`,
    ])
    if (table?.exists == null) return [] as ReadonlyArray<AppliedMigration>
    const rows = yield* sql.unsafe<{ version: number; name: string; applied_at: Date | string }>(
      `SELECT version, name, applied_at FROM ${schema}.migrations ORDER BY version`,
    )
    return rows.map(
      (row): AppliedMigration => ({
        version: Number(row.version),
        name: row.name,
        appliedAt: new Date(row.applied_at),
      }),
    )
  })

/**
 * The statements `migrate` would run to bring a schema with `applied` up to `target`, as one
 * script: what a reviewer reads before letting a deploy step run it.
 */
export const migrationScript = (schema: string, applied: ReadonlySet<number>, target: number): string => {
  const pending = migrations.filter((m) => !applied.has(m.version) && m.version <= target)
  const lines = [
    "BEGIN;",
    `SELECT pg_advisory_xact_lock(${lockKey(schema)});`,
    `CREATE SCHEMA IF NOT EXISTS ${schema};`,
    `CREATE TABLE IF NOT EXISTS ${schema}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());`,
  ]
  for (const migration of pending) {
    lines.push("", `-- migration ${migration.version}: ${migration.name}`)
    for (const statement of migration.statements(schema)) lines.push(`${statement};`)
    lines.push(
      `INSERT INTO ${schema}.migrations (version, name) VALUES (${migration.version}, '${migration.name}');`,
    )
  }
  lines.push("COMMIT;")
  return lines.join("\n")
}
