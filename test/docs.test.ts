/**
 * Code in the README and the guides is type-checked: each fenced block marked
 * `ts snippet=NAME` must be exactly docs/snippets/NAME.ts, which `tsc` checks.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"

const root = join(import.meta.dirname, "..")
const documents = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
]
const fence = /```ts snippet=([\w-]+)\n([\s\S]*?)```/g

const snippets = documents.flatMap((document) =>
  Array.from(readFileSync(join(root, document), "utf8").matchAll(fence), (match) => ({
    document,
    name: match[1]!,
    code: match[2]!,
  })),
)

describe("documentation snippets", () => {
  it("the README has type-checked snippets", () => {
    expect(snippets.filter((s) => s.document === "README.md").length).toBeGreaterThan(0)
  })

  for (const snippet of snippets) {
    it(`${snippet.document}: ${snippet.name} matches docs/snippets/${snippet.name}.ts`, () => {
      const file = readFileSync(join(root, "docs", "snippets", `${snippet.name}.ts`), "utf8")
      expect(snippet.code.trim()).toBe(file.trim())
    })
  }
})
