// The page's measurement: for each rung (a server listener whose TCP MSS is
// clamped to one size) it opens a fresh TLS connection, downloads and
// uploads more than one segment, and opens the rung's server-first probe;
// then it posts what it saw, the server joins its own observations and
// runs the diagnosis, and the page shows the stored report.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const status = (t) => { $("status").textContent = t; };

  function timed(url, opts, ms) {
    const c = new AbortController();
    const t = setTimeout(() => c.abort(), ms);
    const o = Object.assign({ cache: "no-store", mode: "cors", credentials: "omit", signal: c.signal }, opts || {});
    return fetch(url, o).finally(() => clearTimeout(t));
  }

  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

  // postJSON posts body to url. A busy server (429, 503) is not a result:
  // the page says so and tries again after the time the server asks for,
  // a bounded number of times.
  async function postJSON(url, body) {
    for (let attempt = 0; ; attempt++) {
      const r = await fetch(url, {
        method: "POST", cache: "no-store",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if ((r.status === 429 || r.status === 503) && attempt < 30) {
        const wait = Math.min(10, Math.max(1, Number(r.headers.get("Retry-After")) || 2));
        status("The server is busy, retrying in " + wait + " s…");
        await r.text();
        await sleep(wait * 1000);
        continue;
      }
      if (r.status === 422) {
        // The server says why there is no result (the browser refused its
        // certificate): that is the message, not an HTTP error.
        const j = await r.json().catch(() => ({}));
        const e = new Error(j.error || "HTTP 422");
        e.noResult = true;
        throw e;
      }
      if (!r.ok) {
        throw new Error(url + ": HTTP " + r.status + " " + (await r.text()).slice(0, 200));
      }
      return { status: r.status, body: await r.json() };
    }
  }

  // waitTurn waits until the server lets this session test: people behind
  // one address (an office's NAT) test one after the other, so that every
  // connection the server sees from that address belongs to one check.
  async function waitTurn(sess) {
    let st = { started: sess.started, position: sess.position, retry_ms: sess.retry_ms };
    for (let i = 0; !st.started; i++) {
      if (i > 600) {
        throw new Error("waited too long for the other checks from your network");
      }
      status("Another check from your network is running (" + st.position + " ahead of yours); yours starts when it ends…");
      await sleep(st.retry_ms || 700);
      st = (await postJSON("/api/v1/sessions/" + encodeURIComponent(sess.id) + "/start", {})).body;
    }
  }

  function hostFor(fam) {
    return fam.host ? (fam.host.includes(":") ? "[" + fam.host + "]" : fam.host) : location.hostname;
  }

  // rungURL is the address of a rung's port: over TLS, or over plain HTTP
  // when the server says the browser cannot trust its certificate.
  function rungURL(sess, host, port) {
    return (sess.rung_scheme === "http" ? "http://" : "https://") + host + ":" + port;
  }

  function mark(li, text, state) {
    li.querySelector(".what").textContent = text;
    li.className = "rung " + state;
  }

  async function testRung(sess, fam, r, li, timeout, payload) {
    const host = r.host ? (r.host.includes(":") ? "[" + r.host + "]" : r.host) : hostFor(fam);
    const base = rungURL(sess, host, r.port);
    const res = { mss: r.mss, family: fam.family, hello: "skipped", down: "skipped", up: "skipped", probe: "skipped", ms: 0 };
    mark(li, "testing", "testing");
    let probe = null;
    if (r.down_port) {
      // The server writes one full-size segment as soon as this connects;
      // the request itself fails either way: the server reads the result.
      probe = timed(rungURL(sess, host, r.down_port) + "/", {}, timeout).then(() => "opened", () => "opened");
    }
    const q = "?s=" + encodeURIComponent(sess.id);
    const t0 = performance.now();
    try {
      let x = await timed(base + "/t/hello" + q, {}, timeout);
      await x.text();
      if (x.status === 429 || x.status === 503) {
        // Busy is not lost: try once more, then leave the size untested.
        await sleep(1000);
        x = await timed(base + "/t/hello" + q, {}, timeout);
        await x.text();
      }
      res.hello = x.ok ? "ok" : (x.status === 429 || x.status === 503) ? "skipped" : "fail";
      if (!x.ok) {
        res.error = "HTTP " + x.status;
      }
    } catch (e) {
      res.hello = "fail";
      res.error = String(e && e.name || e);
    }
    res.ms = Math.round(performance.now() - t0);
    if (res.hello === "ok") {
      try {
        const x = await timed(base + "/t/down" + q + "&n=" + sess.download_bytes, {}, timeout);
        const b = await x.arrayBuffer();
        res.down = x.ok && b.byteLength === sess.download_bytes ? "ok" : (x.status === 429 || x.status === 503) ? "skipped" : "fail";
      } catch (e) {
        res.down = "fail";
      }
      try {
        const x = await timed(base + "/t/up" + q, { method: "POST", headers: { "Content-Type": "text/plain" }, body: payload }, timeout);
        const j = await x.json();
        res.up = x.ok && j.received === payload.length ? "ok" : (x.status === 429 || x.status === 503) ? "skipped" : "fail";
      } catch (e) {
        res.up = "fail";
      }
    }
    if (probe) {
      res.probe = await probe;
    }
    const bad = res.hello === "fail" || res.down === "fail" || res.up === "fail";
    if (res.hello === "skipped") {
      mark(li, "not tested (server busy)", "untested");
    } else {
      mark(li, bad ? "lost" : "passed", bad ? "fail" : "pass");
    }
    const c = $("progress-count");
    c.textContent = String(Number(c.textContent) + 1);
    return res;
  }

  // testRound tests every job's rung at once. A failure counts only when
  // the round's passes were quick: on a busy client or server a slow
  // handshake looks like a lost one, so when a pass took more than half
  // the timeout, the failed sizes are tested again, once, with three times
  // the wait (as mtuscope probe does); when (in the first round) a
  // family's smallest size failed, which every path must carry, with the
  // longest wait the server allows. What still fails
  // at the smallest size the server reads (too slow, or lost).
  async function testRound(sess, jobs, timeout, payload, first) {
    const results = await Promise.all(jobs.map(([fam, r, li]) => testRung(sess, fam, r, li, timeout, payload)));
    const failed = (x) => x.hello === "fail" || x.down === "fail" || x.up === "fail";
    const slow = results.some((x) => x.hello === "ok" && x.ms > timeout / 2);
    const smallest = {};
    jobs.forEach(([fam, r]) => { smallest[fam.family] = Math.min(smallest[fam.family] || Infinity, r.mss); });
    const lowFail = first && results.some((x, i) => failed(x) && jobs[i][1].mss === smallest[jobs[i][0].family]);
    const again = results.map((x, i) => i).filter((i) => failed(results[i]));
    if ((!slow && !lowFail) || again.length === 0) {
      return results;
    }
    // A family's smallest size failing says the computer or the server is
    // busy, not that the path shrank: that retry gets the longest wait the
    // server allows (a size that passes returns as soon as it has).
    const longer = lowFail ? sess.max_timeout_ms : Math.min(sess.max_timeout_ms, 3 * timeout);
    status("The connection is slow: testing " + again.length + " sizes again with a longer wait…");
    const total = $("progress-total");
    total.textContent = String(Number(total.textContent) + again.length);
    const retried = await Promise.all(again.map((i) => testRung(sess, jobs[i][0], jobs[i][1], jobs[i][2], longer, payload)));
    again.forEach((i, k) => {
      retried[k].retried = true;
      results[i] = retried[k];
    });
    return results;
  }

  function addRow(ladder, fam, r) {
    const li = document.createElement("li");
    li.className = "rung waiting";
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = "IPv" + fam.family + " " + (r.mss + (fam.family === 6 ? 60 : 40)) + " bytes";
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = "waiting";
    li.append(size, " ", what);
    ladder.append(li);
    return li;
  }

  // claimFamilies extends the session's turn to this client's address in
  // each family the check tests under its own host name (a dual-stack
  // check reaches the server from a second address): from then on, every
  // connection from that address belongs to this check too.
  async function claimFamilies(sess) {
    for (const fam of sess.families) {
      if (!fam.host || !sess.rungs.length) {
        continue;
      }
      const r = sess.rungs[0];
      const url = rungURL(sess, hostFor(fam), r.port) + "/t/claim?s=" + encodeURIComponent(sess.id);
      for (let i = 0; i < 60; i++) {
        let st = null;
        try {
          const x = await timed(url, {}, 5000);
          st = x.ok ? await x.json() : null;
        } catch (e) {
          st = null;
        }
        if (!st || st.claimed) {
          break; // claimed, or that family cannot be reached: its test will say so
        }
        status("Another check from your network is running over IPv" + fam.family + "; yours continues when it ends…");
        await sleep(st.retry_ms || 700);
      }
    }
  }

  async function run() {
    status("Measuring the round-trip time…");
    let rtt = Infinity;
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const r = await fetch("/api/v1/ping", { cache: "no-store" });
      await r.text();
      rtt = Math.min(rtt, performance.now() - t0);
    }
    const sess = (await postJSON("/api/v1/sessions", { rtt_ms: Math.round(rtt) })).body;
    await waitTurn(sess);
    await claimFamilies(sess);
    // A failed size costs one timeout: long enough for a few
    // retransmissions at the measured round-trip time, no longer.
    const timeout = Math.round(Math.min(sess.max_timeout_ms, Math.max(sess.min_timeout_ms, 10 * rtt + sess.min_timeout_ms)));
    const payload = "u".repeat(sess.upload_bytes);
    const ladder = $("ladder");
    const jobs = [];
    for (const fam of sess.families) {
      for (const r of sess.rungs) {
        jobs.push([fam, r, addRow(ladder, fam, r)]);
      }
    }
    $("progress-total").textContent = String(jobs.length);
    $("progress").hidden = false;
    status("Testing " + jobs.length + " packet sizes (each failure waits " + (timeout / 1000).toFixed(1) + " s)…");
    const results = await testRound(sess, jobs, timeout, payload, true);
    // The second round: the server lends ports for the sizes between the
    // largest that passed and the smallest that was lost, one byte apart.
    status("Narrowing down to the byte…");
    const ref = (await postJSON("/api/v1/sessions/" + encodeURIComponent(sess.id) + "/refine",
      { rungs: results, rtt_ms: Math.round(rtt), timeout_ms: timeout })).body;
    const more = [];
    const refineJobs = [];
    for (const rf of ref.families || []) {
      const fam = sess.families.find((f) => f.family === rf.family) || { family: rf.family };
      for (const r of rf.rungs || []) {
        refineJobs.push([fam, r, addRow(ladder, fam, r)]);
      }
      if (rf.exact_port) {
        // The server writes one segment of each size, smallest first; it
        // reads from its own side which of them arrived. The browser only
        // holds the connection open long enough for the acknowledgements.
        more.push(timed(rungURL(sess, hostFor(fam), rf.exact_port) + "/", {}, ref.wait_ms).then(() => null, () => null));
      }
    }
    $("progress-total").textContent = String(jobs.length + refineJobs.length);
    const [refined] = await Promise.all([testRound(sess, refineJobs, timeout, payload, false), Promise.all(more)]);
    results.push(...refined);
    status("Working out the result…");
    const rep = (await postJSON("/api/v1/sessions/" + encodeURIComponent(sess.id) + "/result",
      { rungs: results, rtt_ms: Math.round(rtt), timeout_ms: timeout })).body;
    $("report-link").href = rep.url;
    $("done").hidden = false;
    status("Done.");
    location.assign(rep.url);
  }

  run().catch((e) => {
    status("The check could not finish: " + (e && e.message || e));
    if (e && e.noResult) {
      // Nothing was lost on the network: the sizes were not measured.
      document.querySelectorAll("#ladder .rung.fail").forEach((li) => mark(li, "not measured", "untested"));
    }
  });
})();
