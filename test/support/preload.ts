/**
 * The library loads PGlite when a PGlite layer is built. On a busy machine loading it takes
 * seconds, which a test would spend inside the timeout of its first hook; loading it before
 * the file's tests keeps that time out of them.
 */
await import("@electric-sql/pglite")
