/**
 * W3C trace context carried with a job: the inserting span's `traceparent`, kept in the job's
 * meta (as Oban's and River's OpenTelemetry integrations do) so that it survives retries, is
 * read by any node, and needs no column the claim must return.
 */
import { Context, DefaultServices, Effect, Option, Tracer } from "effect"

/** The meta key holding the producer's W3C `traceparent`. */
export const traceparentKey = "traceparent"

/** Effect's own tracer: it exports nothing, so nothing it records is worth carrying. */
export const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** `00-{trace id}-{span id}-{flags}`; undefined for ids that are not W3C ids. */
export const format = (span: Tracer.AnySpan): string | undefined => {
  const value = `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
  return traceparentPattern.test(value) ? value : undefined
}

/** The remote span a stored `traceparent` names, if it is a valid one. */
export const parse = (value: unknown): Tracer.ExternalSpan | undefined => {
  if (typeof value !== "string") return undefined
  const match = traceparentPattern.exec(value)
  if (match === null || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined
  return Tracer.externalSpan({
    traceId: match[1]!,
    spanId: match[2]!,
    sampled: (Number.parseInt(match[3]!, 16) & 1) === 1,
  })
}

/**
 * The meta to store: the given one plus the current span's `traceparent`, when a tracer that
 * exports is installed and the app did not set one itself (it may carry a context from
 * elsewhere). Under the built-in tracer the meta is left as it is, at the cost of one lookup.
 */
export const withTraceContext = (
  meta: Record<string, unknown> | undefined,
): Effect.Effect<Record<string, unknown>> =>
  Effect.flatMap(Effect.tracer, (tracer) => {
    if (tracer === builtInTracer || (meta !== undefined && traceparentKey in meta))
      return Effect.succeed(meta ?? {})
    return Effect.map(Effect.option(Effect.currentParentSpan), (span) => {
      const traceparent = Option.isSome(span) ? format(span.value) : undefined
      return traceparent === undefined ? (meta ?? {}) : { ...meta, [traceparentKey]: traceparent }
    })
  })
