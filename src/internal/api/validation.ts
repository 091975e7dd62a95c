/**
 * Checks shared by everything that stores jobs (inserts, cron schedules): names, numbers,
 * times and args, each refused with a message that says what to change.
 */
import { Duration, Effect, Either, Option, ParseResult, Schema } from "effect"
import type * as Job from "../../Job.js"
import { InvalidJobArgs, InvalidJobOptions, PayloadTooLarge } from "../../JobError.js"
import * as Json from "./json.js"

const queuePattern = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/
export const maxSmallint = 32767
export const minSmallint = -32768
export const maxInt = 2147483647

export const invalid = (message: string) => new InvalidJobOptions({ message })

const schemaPattern = /^[a-z_][a-z0-9_]{0,47}$/

/** The schema name is spliced into SQL, so only plain identifiers pass. */
export const checkSchemaName = (schema: string): Effect.Effect<void, InvalidJobOptions> =>
  schemaPattern.test(schema)
    ? Effect.void
    : Effect.fail(
        invalid(
          `schema name ${JSON.stringify(schema)} is not valid: use lowercase letters, digits and "_", at most 48, not starting with a digit`,
        ),
      )

export const checkQueueName = (name: string): Effect.Effect<void, InvalidJobOptions> =>
  queuePattern.test(name)
    ? Effect.void
    : Effect.fail(
        invalid(
          `queue name ${JSON.stringify(name)} is not valid: use 1 to 128 letters, digits, "_", ".", ":" or "-", not starting with a punctuation mark`,
        ),
      )

export const checkWholeNumber = (
  what: string,
  value: number,
  min: number,
  max: number,
): Effect.Effect<void, InvalidJobOptions> =>
  Number.isInteger(value) && value >= min && value <= max
    ? Effect.void
    : Effect.fail(invalid(`${what} must be a whole number from ${min} to ${max}, got ${value}`))

/** When a job should run, from `scheduleIn` or `scheduleAt` (now when neither is given). */
export const scheduleTime = (
  options: {
    readonly scheduleIn?: Duration.DurationInput | undefined
    readonly scheduleAt?: Date | undefined
  },
  now: number,
): Effect.Effect<number, InvalidJobOptions> => {
  if (options.scheduleAt !== undefined && Number.isNaN(options.scheduleAt.getTime())) {
    return Effect.fail(invalid("scheduleAt is not a valid date"))
  }
  if (options.scheduleIn !== undefined && options.scheduleAt !== undefined) {
    return Effect.fail(invalid("give scheduleIn or scheduleAt, not both"))
  }
  let delay = 0
  if (options.scheduleIn !== undefined) {
    // Duration.decode throws on text it cannot read ("Infinity", "soon"): a caller's mistake, not a defect.
    const decoded = Duration.decodeUnknown(options.scheduleIn)
    if (Option.isNone(decoded)) {
      return Effect.fail(
        invalid(
          `scheduleIn ${JSON.stringify(String(options.scheduleIn))} is not a duration: give one such as "10 minutes" or a number of milliseconds`,
        ),
      )
    }
    delay = Duration.toMillis(decoded.value)
  }
  const at = options.scheduleAt?.getTime() ?? now + delay
  // Date's own range: beyond it a time cannot be written down.
  return Math.abs(at) <= 8.64e15
    ? Effect.succeed(at)
    : Effect.fail(invalid("scheduleIn must be a finite duration"))
}

const describe = (error: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(error)

/** Encodes args with the definition's Schema, as stored values and as JSON text. */
export const encodeArgs = (
  definition: Job.Definition,
  argsList: ReadonlyArray<unknown>,
  maxPayloadBytes: number,
): Effect.Effect<
  { readonly args: ReadonlyArray<unknown>; readonly argsJson: ReadonlyArray<string> },
  InvalidJobArgs | PayloadTooLarge
> =>
  Effect.suspend(
    (): Effect.Effect<
      { readonly args: ReadonlyArray<unknown>; readonly argsJson: ReadonlyArray<string> },
      InvalidJobArgs | PayloadTooLarge
    > => {
      const encode = Schema.encodeEither(definition.argsSchema)
      const args: Array<unknown> = []
      const argsJson: Array<string> = []
      for (const input of argsList) {
        const encoded = encode(input)
        if (Either.isLeft(encoded)) {
          return Effect.fail(
            new InvalidJobArgs({
              type: definition.type,
              reason: `they do not fit its Schema: ${describe(encoded.left)}`,
            }),
          )
        }
        let json: string
        try {
          // The Schema's encoded type is JSON, but a cast can still smuggle in a bigint.
          json = JSON.stringify(encoded.right) ?? "null"
        } catch (error) {
          return Effect.fail(
            new InvalidJobArgs({ type: definition.type, reason: `not JSON: ${String(error)}` }),
          )
        }
        // What JSON.stringify or PostgreSQL would change: the job would run with other args.
        const changed = Json.change(encoded.right, "args", Json.refusedText(json))
        if (changed !== undefined) {
          return Effect.fail(new InvalidJobArgs({ type: definition.type, reason: changed }))
        }
        // UTF-8 is at most 3 bytes per UTF-16 unit; count exactly only when it might matter.
        const bytes = json.length * 3 <= maxPayloadBytes ? json.length : Buffer.byteLength(json)
        if (bytes > maxPayloadBytes) {
          return Effect.fail(new PayloadTooLarge({ type: definition.type, bytes, limit: maxPayloadBytes }))
        }
        args.push(encoded.right)
        argsJson.push(json)
      }
      return Effect.succeed({ args, argsJson })
    },
  )

/** Refuses meta that JSON or PostgreSQL would not store as given. */
export const checkMeta = (
  meta: Record<string, unknown> | undefined,
): Effect.Effect<void, InvalidJobOptions> => {
  if (meta === undefined) return Effect.void
  let json: string
  try {
    json = JSON.stringify(meta)
  } catch (error) {
    return Effect.fail(invalid(`meta is not JSON: ${String(error)}`))
  }
  const changed = Json.change(meta, "meta", Json.refusedText(json))
  return changed === undefined ? Effect.void : Effect.fail(invalid(changed))
}
