"""Starting the engine when its pthread pool never starts: Firefox under WebDriver BiDi can block a worker's
nested `new Worker()` for good (docs/DESIGN.md), and did so in three tries running in one CI pass. Here the
engine worker is the real one, started from a script whose `new Worker()` blocks forever, so every try stalls
the same way. "auto" must go on with the single-thread build (which starts no worker of its own) and say so;
"mt", asked for by name, must fail with a BridgeError that names the stall, never hang."""

from __future__ import annotations

import pytest

from py_runner.host.fixtures import fixture_model

pytestmark = pytest.mark.e2e

# The real engine worker, except that each `new Worker()` it makes blocks (Atomics.wait: no CPU burnt) until
# the bridge terminates it. Its scripts resolve against /web/engine/, where the real worker.js lives.
STALLING_WORKER = """
const engine = new URL("/web/engine/", self.location.href);
self.__pyRunnerScriptUrls = new Proxy({}, { get: (_, path) => new URL(path, engine).href });
self.Worker = function StalledWorker() {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
};
importScripts(new URL("worker.js", engine).href);
"""

START_BOTH = """async ({worker, model}) => {
  const { Bridge } = await import("/web/page/bridge.js");
  const names = ["st", "mt", "st-relaxed", "mt-relaxed"];
  const builds = Object.fromEntries(names.map((b) => [b, { js: `/build/${b}/pr_glue.js` }]));
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => { warnings.push(args.join(" ")); warn(...args); };
  const auto = new Bridge({ ...builds, worker }, { build: "auto", threads: 2 });
  const mt = new Bridge({ ...builds, worker }, { build: "mt", threads: 2 });
  const started = Date.now();
  const [autoStart, mtStart] = await Promise.allSettled([auto.start(), mt.start()]);
  const seconds = (Date.now() - started) / 1000;
  console.warn = warn;
  const out = { isolated: crossOriginIsolated, seconds, warnings };
  out.auto = autoStart.value || String(autoStart.reason);
  const { reason } = mtStart;
  out.mt = mtStart.status === "rejected" ? { name: reason.name, message: reason.message } : mtStart.value;
  if (autoStart.status === "fulfilled") {
    await auto.request("load", { source: model, n_ctx: 64, cache: false });
    const tokens = [];
    const onToken = (id) => tokens.push(id);
    await auto.request("generate", { prompt: "Hello", n_predict: 4, temp: 0 }, { onToken });
    out.tokens = tokens;
    auto.terminate();
  }
  return out;
}"""


def test_a_pool_that_never_starts_falls_back_to_st_under_auto_and_fails_mt_by_name(
    require_builds, open_browser_and_server, tmp_path
) -> None:
    model = fixture_model("tiny", "f16")
    (tmp_path / "stalling_worker.js").write_text(STALLING_WORKER, encoding="utf-8")
    (tmp_path / "blank.html").write_text("<!doctype html><title>engine start</title>", encoding="utf-8")
    with open_browser_and_server(files_dir=tmp_path) as (browser, _, base_url):
        page = browser.new_page()
        page.goto(f"{base_url}/files/blank.html")
        out = page.evaluate(
            START_BOTH, {"worker": "/files/stalling_worker.js", "model": f"/models/{model.name}"}
        )
    assert out["isolated"] is True  # the dev server's headers: mt is what auto would choose here
    auto = out["auto"]
    assert isinstance(auto, dict), auto
    assert (auto["build"], auto["threads"]) == ("st", 1), auto
    assert auto["notice"] == "single-thread build: the multi-thread build's 2 threads did not start (3 tries)"
    assert len(out["tokens"]) == 4  # the st engine that took over loads and generates
    assert out["mt"] == {"name": "BridgeError", "message": "the engine worker stalled starting its 2 threads"}
    stalls = [w for w in out["warnings"] if "stalled starting its 2 threads" in w]
    assert sorted(w[-len("(attempt 1 of 3)") :] for w in stalls) == [
        f"(attempt {n} of 3)" for n in (1, 1, 2, 2, 3, 3)
    ], out["warnings"]
    # Both bridges tried three times, 5 s each, side by side; st then started at once.
    assert out["seconds"] < 60, out["seconds"]
