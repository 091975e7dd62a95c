// effect-jobs dashboard: theme, keyboard shortcuts, confirmations and live updates.
// Plain script, no dependency; everything it shows comes from server-rendered, escaped HTML.
;(() => {
  const root = document.documentElement
  const prefix = document.body.dataset.prefix || ""

  const storedTheme = localStorage.getItem("effect-jobs-theme")
  if (storedTheme === "dark" || storedTheme === "light") root.dataset.theme = storedTheme
  const toggleTheme = () => {
    const dark = root.dataset.theme
      ? root.dataset.theme === "dark"
      : window.matchMedia("(prefers-color-scheme: dark)").matches
    root.dataset.theme = dark ? "light" : "dark"
    localStorage.setItem("effect-jobs-theme", root.dataset.theme)
  }

  document.addEventListener("submit", (event) => {
    const button = event.submitter
    const question = button?.dataset.confirm
    if (question && !window.confirm(question)) event.preventDefault()
  })

  // Clicking anywhere on a row with data-href opens it.
  document.addEventListener("click", (event) => {
    const target = event.target
    if (target.closest("a, button, input, textarea, label, summary")) return
    const row = target.closest("tr[data-href]")
    if (row) window.location.assign(row.dataset.href)
  })
  document.addEventListener("click", (event) => {
    if (event.target.id === "theme") toggleTheme()
    if (event.target.id === "help") document.getElementById("keys").showModal()
  })

  let pending = ""
  let selected = -1
  const rows = () => Array.from(document.querySelectorAll("table.rows tbody tr"))
  const select = (index) => {
    const all = rows()
    if (all.length === 0) return
    selected = Math.max(0, Math.min(all.length - 1, index))
    for (const [i, row] of all.entries()) row.classList.toggle("selected", i === selected)
    all[selected].scrollIntoView({ block: "nearest" })
  }
  const pages = { o: "/", j: "/jobs", f: "/failures", q: "/queues", s: "/schedules", t: "/tasks" }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return
    if (event.target.closest?.("input, textarea, select, [contenteditable]")) return
    const key = event.key
    if (pending === "g" && pages[key]) {
      pending = ""
      window.location.assign(prefix + pages[key])
      return
    }
    pending = key === "g" ? "g" : ""
    if (key === "/") {
      const filter = document.getElementById("filter-search")
      if (filter) {
        event.preventDefault()
        filter.focus()
      }
    } else if (key === "j") select(selected + 1)
    else if (key === "k") select(selected - 1)
    else if (key === "Enter" && selected >= 0) {
      const row = rows()[selected]
      if (row?.dataset.href) window.location.assign(row.dataset.href)
    } else if (key === "d") toggleTheme()
    else if (key === "?") document.getElementById("keys").showModal()
  })

  // Live: one event stream while the tab is visible; each change refetches this page and
  // swaps its main part, unless the operator is typing in a field, editing args or has
  // selected jobs.
  const indicator = document.getElementById("live")
  let source = null
  let refreshing = false
  let again = false
  const busy = () => {
    const active = document.activeElement
    return (
      (active?.closest?.("main") && active.matches("input, textarea, select")) ||
      document.querySelector("main details[open] textarea, main input[type=checkbox]:checked") !== null
    )
  }
  const refresh = async () => {
    if (refreshing) {
      again = true
      return
    }
    if (busy()) return
    refreshing = true
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" })
      if (response.ok) {
        const next = new DOMParser()
          .parseFromString(await response.text(), "text/html")
          .getElementById("main")
        const main = document.getElementById("main")
        if (next && main && !busy()) {
          main.replaceChildren(...Array.from(next.childNodes).map((node) => document.importNode(node, true)))
          if (selected >= 0) select(selected)
          document.body.dataset.refreshed = String(Date.now())
        }
      }
    } finally {
      refreshing = false
      if (again) {
        again = false
        refresh()
      }
    }
  }
  const connect = () => {
    if (source !== null || typeof EventSource === "undefined") return
    source = new EventSource(`${prefix}/events`)
    // What changed between the page's rendering and the stream's opening sent no event here:
    // one refetch on opening catches it (a bulk action that finished meanwhile, say).
    source.addEventListener("open", () => {
      indicator?.classList.add("on")
      refresh()
    })
    source.addEventListener("error", () => indicator?.classList.remove("on"))
    source.addEventListener("change", refresh)
  }
  const disconnect = () => {
    if (source === null) return
    source.close()
    source = null
    if (indicator) indicator.classList.remove("on")
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      connect()
      refresh()
    } else disconnect()
  })
  if (document.visibilityState === "visible") connect()
})()
