/** The large jobs table that the listing and dashboard benchmarks read. */
import type { SqlClient } from "@effect/sql/SqlClient"

/**
 * A table as a busy app keeps it: 97 % completed, 1 % each discarded (with errors), available
 * and scheduled; ten queues, twenty types, a cron schedule's jobs and resource jobs among them;
 * inserted one a second up to now.
 */
export const seed = (sql: SqlClient, schema: string, rows: number) =>
  sql.unsafe(
    `INSERT INTO ${schema}.jobs (queue, type, args, state, priority, attempt, max_attempts, errors, meta,
       scheduled_at, attempted_at, attempted_by, completed_at, discarded_at, inserted_at, resource_type, resource_id)
     SELECT 'q' || (g % 10), 't' || (g % 20),
       jsonb_build_object('user', jsonb_build_object('id', g % 100000), 'n', g),
       s.state, 0, CASE WHEN s.state IN ('available', 'scheduled') THEN 0 ELSE 1 END, 3,
       CASE WHEN s.state = 'discarded' THEN jsonb_build_array(jsonb_build_object('attempt', 1, 'at', now(),
         'tag', 'SmtpRefused', 'message', CASE WHEN g % 200 = 1 THEN 'Mailbox full' ELSE 'Connection reset' END,
         'cause', '')) ELSE '[]'::jsonb END,
       CASE WHEN g % 1000 = 0 THEN '{"schedule":"nightly"}'::jsonb ELSE '{}'::jsonb END,
       t.at + CASE WHEN s.state = 'scheduled' THEN interval '1 day' ELSE interval '0' END,
       CASE WHEN s.state IN ('available', 'scheduled') THEN NULL ELSE t.at END,
       CASE WHEN s.state IN ('available', 'scheduled') THEN NULL ELSE 'node-' || (g % 8) END,
       CASE WHEN s.state = 'completed' THEN t.at END, CASE WHEN s.state = 'discarded' THEN t.at END,
       t.at,
       CASE WHEN g % 100 = 0 THEN 'post' END, CASE WHEN g % 100 = 0 THEN g::text END
     FROM generate_series(1, $1::integer) AS g,
       LATERAL (SELECT CASE g % 100 WHEN 1 THEN 'discarded' WHEN 2 THEN 'available' WHEN 3 THEN 'scheduled'
         ELSE 'completed' END AS state) s,
       LATERAL (SELECT now() - make_interval(secs => $1::integer - g) AS at) t`,
    [rows],
  )
