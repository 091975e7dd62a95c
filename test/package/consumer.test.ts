/**
 * effect-jobs as an app installs it: `npm pack`, then fresh apps outside the repository
 * install the tarball with the packages the README's Installation section names, type-check
 * a program against the installed types (strict, exactOptionalPropertyTypes) and run it with
 * node. A file, a peer or a type missing from the package fails here.
 */
import { execFile } from "node:child_process"
import * as NodeFs from "node:fs/promises"
import { builtinModules } from "node:module"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import Pg from "pg"
import ts from "typescript"
import { freshSchema, postgresAvailable, postgresUrl } from "../support/engines.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const tsc = NodePath.join(root, "node_modules", "typescript", "bin", "tsc")
const manifest = JSON.parse(await NodeFs.readFile(NodePath.join(root, "package.json"), "utf8"))
const readme = await NodeFs.readFile(NodePath.join(root, "README.md"), "utf8")

/** The `npm install` lines of the README's Installation section, as lists of package specs. */
const installLines = (() => {
  const section = /## Installation\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? ""
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? ""
  return block
    .split("\n")
    .filter((line) => line.startsWith("npm install "))
    .map((line) => line.replace(/#.*$/, "").trim().split(/\s+/).slice(2))
})()
const readmeInstall = (what: string) => {
  const line = installLines.find((specs) => specs.some((spec) => spec.startsWith(what)))
  if (line === undefined) throw new Error(`README's Installation section has no npm install line for ${what}`)
  return line
}
const core = readmeInstall("effect-jobs")
const pglite = readmeInstall("@electric-sql/pglite")
const nodeRuntime = readmeInstall("@effect/platform-node")
const commandLine = readmeInstall("@effect/cli")
const nodeTypes = `@types/node@${manifest.devDependencies["@types/node"]}`

/** npm reads `npm_*` variables as its configuration: the outer `npm test` must not configure the apps' npm. */
const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("npm_"))),
  ...extra,
})

const run = async (
  command: string,
  args: ReadonlyArray<string>,
  cwd: string,
  env: NodeJS.ProcessEnv = childEnv(),
): Promise<string> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(command, args, {
      cwd,
      env,
      timeout: 240_000,
      maxBuffer: 64 * 1024 * 1024,
    })
    return `${stdout}${stderr}`
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string }
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${stdout}${stderr}`)
  }
}
const npm = (args: ReadonlyArray<string>, cwd: string) => run("npm", args, cwd)
const install = (specs: ReadonlyArray<string>, cwd: string) =>
  npm(["install", "--prefer-offline", "--no-audit", "--no-fund", ...specs], cwd)

/** As Effect recommends for apps; the declarations' own imports are checked by "declares every package". */
const appTsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2022"],
    types: ["node"],
    strict: true,
    exactOptionalPropertyTypes: true,
    skipLibCheck: true,
    outDir: "out",
  },
  include: ["main.ts"],
}

let workspace = ""
let tarball = ""

/** A fresh app outside the repository with `program` as main.ts, built by tsc against what it installed. */
const makeApp = async (name: string, specs: ReadonlyArray<string>, program: string) => {
  const dir = NodePath.join(workspace, name)
  await NodeFs.mkdir(dir)
  const pkg = { name, version: "0.0.0", private: true, type: "module" }
  await NodeFs.writeFile(NodePath.join(dir, "package.json"), JSON.stringify(pkg, null, 2))
  await NodeFs.writeFile(NodePath.join(dir, "tsconfig.json"), JSON.stringify(appTsconfig, null, 2))
  await NodeFs.writeFile(NodePath.join(dir, "main.ts"), program)
  await install(
    specs.map((spec) => (spec === "effect-jobs" ? tarball : spec)),
    dir,
  )
  await run(process.execPath, [tsc, "-p", "tsconfig.json"], dir)
  return dir
}

const effectCopies = async (dir: string) =>
  new Set(
    (await npm(["ls", "effect", "--parseable", "--all"], dir)).split("\n").filter((line) => line !== ""),
  )

/**
 * What the modules and declarations of `dist` import: packages by name, and the relative
 * imports that name no file in `dist` (a declaration missing there is silently `any` in an
 * app that skips library checks).
 */
const imports = async (dist: string) => {
  const packages = new Set<string>()
  const missingFiles: Array<string> = []
  const files = (await NodeFs.readdir(dist, { recursive: true })).filter((file) => /\.(d\.ts|js)$/.test(file))
  for (const file of files) {
    const text = await NodeFs.readFile(NodePath.join(dist, file), "utf8")
    // TypeScript's own scan of a file's imports: static, dynamic and `import("…")` types, and
    // never text inside a string that only looks like one.
    const found = ts.preProcessFile(text, true, true).importedFiles.map((entry) => entry.fileName)
    for (const specifier of found) {
      if (specifier!.startsWith(".")) {
        const target = NodePath.join(dist, NodePath.dirname(file), specifier!)
        const candidates = file.endsWith(".d.ts") ? [target.replace(/\.js$/, ".d.ts")] : [target]
        if (!candidates.some((candidate) => files.includes(NodePath.relative(dist, candidate)))) {
          missingFiles.push(`${file} -> ${specifier}`)
        }
      } else if (!specifier!.startsWith("node:") && !builtinModules.includes(specifier!)) {
        const parts = specifier!.split("/")
        packages.add(specifier!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!)
      }
    }
  }
  return { packages, missingFiles }
}

beforeAll(async () => {
  workspace = await NodeFs.mkdtemp(NodePath.join(NodeOs.tmpdir(), "effect-jobs-consumer-"))
  await npm(["pack", "--pack-destination", workspace], root)
  const packed = (await NodeFs.readdir(workspace)).filter((file) => file.endsWith(".tgz"))
  expect(packed).toHaveLength(1)
  tarball = NodePath.join(workspace, packed[0]!)
}, 300_000)

afterAll(async () => {
  if (workspace !== "") await NodeFs.rm(workspace, { recursive: true, force: true })
})

describe("the packed package in a fresh app", () => {
  it("the README's Installation pins the versions the package declares as peers", () => {
    const pinned = Object.fromEntries(
      [...core, ...pglite, ...commandLine]
        .filter((spec) => spec !== "effect-jobs")
        .map((spec) => [spec.slice(0, spec.lastIndexOf("@")), spec.slice(spec.lastIndexOf("@") + 1)]),
    )
    expect(pinned).toEqual(manifest.peerDependencies)
    expect(manifest.peerDependenciesMeta).toEqual({
      "@effect/cli": { optional: true },
      "@effect/platform-node": { optional: true },
      "@electric-sql/pglite": { optional: true },
    })
  })

  it("has an entry point for every module the root exports", async () => {
    const index = await NodeFs.readFile(NodePath.join(root, "src", "index.ts"), "utf8")
    const modules = [...index.matchAll(/export \* as (\w+) from/g)].map(([, name]) => `./${name}`)
    expect(modules.length).toBeGreaterThan(0)
    expect(modules.filter((entry) => !(entry in manifest.exports))).toEqual([])
  })

  it("declares every package its code and declarations import, and ships every file they import", async () => {
    const dir = NodePath.join(workspace, "unpacked")
    await NodeFs.mkdir(dir)
    await run("tar", ["-xzf", tarball, "-C", dir], dir)
    const packed = JSON.parse(await NodeFs.readFile(NodePath.join(dir, "package", "package.json"), "utf8"))
    const declared = new Set([
      ...Object.keys(packed.dependencies ?? {}),
      ...Object.keys(packed.peerDependencies ?? {}),
    ])
    const { packages, missingFiles } = await imports(NodePath.join(dir, "package", "dist"))
    expect(packages.size).toBeGreaterThan(0)
    expect([...packages].filter((name) => !declared.has(name))).toEqual([])
    expect(missingFiles).toEqual([])
    for (const entry of Object.values<string | { types: string; default: string }>(packed.exports)) {
      for (const file of typeof entry === "string" ? [entry] : [entry.types, entry.default]) {
        await NodeFs.access(NodePath.join(dir, "package", file))
      }
    }
  })

  it("runs the README example on PGlite, with one copy of effect", async () => {
    const program = await NodeFs.readFile(NodePath.join(root, "docs", "snippets", "readme.ts"), "utf8")
    const dir = await makeApp(
      "pglite-app",
      [...core, ...pglite, ...nodeRuntime, ...commandLine, nodeTypes],
      program,
    )
    expect([...(await effectCopies(dir))]).toEqual([NodePath.join(dir, "node_modules", "effect")])
    const output = await run(process.execPath, ["out/main.js"], dir)
    expect(output).toContain('sending "Welcome" to ada@example.com (attempt 1)')
    expect(output).not.toContain("Still there?")
    // The command line, as the README's Command line section installs it.
    const help = await run("npx", ["--no", "--", "effect-jobs", "--help"], dir)
    for (const command of [
      "migrate",
      "doctor",
      "jobs",
      "queues",
      "schedules",
      "tasks",
      "nodes",
      "stats",
      "work",
    ]) {
      expect(help).toMatch(new RegExp(`^  - ${command}\\b`, "m"))
    }
  }, 600_000)

  it.runIf(postgresAvailable)(
    "runs on PostgreSQL without PGlite installed, which JobsPglite reports as a typed error",
    async () => {
      const program = await NodeFs.readFile(
        NodePath.join(root, "test", "package", "app", "postgres.ts"),
        "utf8",
      )
      const dir = await makeApp("postgres-app", [...core, ...nodeRuntime, nodeTypes], program)
      await expect(
        NodeFs.access(NodePath.join(dir, "node_modules", "@electric-sql", "pglite")),
      ).rejects.toThrow()
      expect([...(await effectCopies(dir))]).toEqual([NodePath.join(dir, "node_modules", "effect")])
      const schema = freshSchema()
      try {
        const output = await run(
          process.execPath,
          ["out/main.js"],
          dir,
          childEnv({ DATABASE_URL: postgresUrl, JOBS_SCHEMA: schema }),
        )
        expect(output).toMatch(/sent "Welcome" to ada@example.com \(job (\d+), queue default\)/)
        expect(output).toMatch(/job \d+ is completed/)
        expect(output).toContain(
          "JobsPglite.layer: EngineNotInstalled: JobsPglite needs the package @electric-sql/pglite",
        )
        // Without its optional peers the command line says what to install, in one line.
        await expect(run("npx", ["--no", "--", "effect-jobs", "--help"], dir)).rejects.toThrow(
          /effect-jobs: the command line needs @effect\/cli: install it with `npm install @effect\/cli`/,
        )
      } finally {
        const client = new Pg.Client({ connectionString: postgresUrl })
        await client.connect()
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
        await client.end()
      }
    },
    600_000,
  )
})
