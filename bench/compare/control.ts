/**
 * The comparison's own connections to PostgreSQL and Redis, apart from any system's: they
 * create the database, clean up between runs, count jobs, and read the stores' statistics.
 */
import { Redis } from "ioredis"
import pg from "pg"
import { adminUrl, pgDatabase, pgSchemas, pgUrl, redis } from "./common.js"

let client: pg.Client | undefined

/** One connection to the comparison's database, opened on first use. */
export const control = async (): Promise<pg.Client> => {
  if (!client) {
    const c = new pg.Client({ connectionString: pgUrl, application_name: "bench-control" })
    await c.connect()
    client = c
  }
  return client
}

export const query = async <Row = Record<string, unknown>>(
  text: string,
  values: ReadonlyArray<unknown> = [],
): Promise<Array<Row>> => {
  const c = await control()
  return (await c.query(text, values as Array<unknown>)).rows as Array<Row>
}

export const closeControl = async (): Promise<void> => {
  const c = client
  client = undefined
  await c?.end()
}

/** Creates the comparison's database if it is missing (through the admin database). */
export const ensureDatabase = async (): Promise<void> => {
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    const found = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [pgDatabase])
    if (found.rowCount === 0) await admin.query(`CREATE DATABASE "${pgDatabase.replaceAll('"', '""')}"`)
  } finally {
    await admin.end()
  }
}

const withRedis = async <A>(f: (r: Redis) => Promise<A>): Promise<A> => {
  const r = new Redis({ host: redis.host, port: redis.port, db: redis.db, lazyConnect: true })
  await r.connect()
  try {
    return await f(r)
  } finally {
    r.disconnect()
  }
}

/**
 * A clean slate before every run: every system's schema dropped, the database vacuumed
 * and checkpointed, and the comparison's Redis database flushed.
 */
export const resetStores = async (stores: { postgres: boolean; redis: boolean }): Promise<void> => {
  if (stores.postgres) {
    for (const schema of pgSchemas) await query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await query("VACUUM")
    await query("CHECKPOINT")
  }
  if (stores.redis) await withRedis((r) => r.flushdb())
}

/** VACUUM ANALYZE of every table of a schema, so that every system starts with fresh statistics. */
export const vacuumAnalyze = async (schema: string): Promise<void> => {
  const tables = await query<{ name: string }>(
    "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = $1",
    [schema],
  )
  for (const { name } of tables) await query(`VACUUM (ANALYZE) ${name}`)
}

export interface TableStats {
  readonly table: string
  readonly n_live_tup: number
  readonly n_dead_tup: number
  readonly autovacuum_count: number
}

/** Live and dead tuples of a schema's tables, from pg_stat_user_tables. */
export const deadTuples = async (
  schema: string,
  mainTable: string,
): Promise<{ n_dead_tup: number; jobs_table_n_dead_tup: number; tables: Array<TableStats> }> => {
  const rows = await query<TableStats>(
    `SELECT relname AS "table", n_live_tup::int, n_dead_tup::int, autovacuum_count::int
       FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY n_dead_tup DESC, relname`,
    [schema],
  )
  return {
    n_dead_tup: rows.reduce((sum, r) => sum + r.n_dead_tup, 0),
    jobs_table_n_dead_tup: rows
      .filter((r) => r.table === mainTable)
      .reduce((sum, r) => sum + r.n_dead_tup, 0),
    tables: rows.filter((r) => r.n_dead_tup > 0 || r.n_live_tup > 0),
  }
}

/** Redis memory and key count of the comparison's database. */
export const redisMemory = (): Promise<Record<string, unknown>> =>
  withRedis(async (r) => {
    const info = await r.info("memory")
    const field = (name: string) => info.match(new RegExp(`^${name}:(.*)$`, "m"))?.[1]?.trim()
    return {
      used_memory: Number(field("used_memory")),
      used_memory_human: field("used_memory_human"),
      used_memory_peak_human: field("used_memory_peak_human"),
      keys: await r.dbsize(),
    }
  })

/** Server versions and the settings that bear on the figures. */
export const serverInfo = async (): Promise<Record<string, unknown>> => {
  const [version] = await query<{ server_version: string }>("SHOW server_version")
  const settings = await query<{ name: string; setting: string }>(
    `SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name IN
       ('shared_buffers', 'synchronous_commit', 'fsync', 'autovacuum', 'max_connections', 'work_mem',
        'max_wal_size', 'checkpoint_timeout', 'wal_level', 'full_page_writes')`,
  )
  const redisInfo = await withRedis(async (r) => {
    const server = await r.info("server")
    const [, policy] = (await r.config("GET", "maxmemory-policy")) as Array<string>
    const [, appendonly] = (await r.config("GET", "appendonly")) as Array<string>
    const [, save] = (await r.config("GET", "save")) as Array<string>
    return {
      version: server.match(/^redis_version:(.*)$/m)?.[1]?.trim(),
      db: redis.db,
      "maxmemory-policy": policy,
      appendonly,
      save: save === "" ? "(none)" : save,
    }
  }).catch((error: unknown) => ({ error: String(error) }))
  return {
    postgres: {
      server_version: version?.server_version,
      database: pgDatabase,
      settings: Object.fromEntries(settings.map((s) => [s.name, s.setting])),
    },
    redis: redisInfo,
  }
}
