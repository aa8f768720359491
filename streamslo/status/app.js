// streamslo status page: polls api/status (shape documented in streamslo/status/view.py)
// and renders one card per region. No framework, no CDN: the page must work offline.
"use strict";

const REFRESH_MS = 1000;
const fmtMs = (v) => (v === null || v === undefined ? "–" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(v < 10 ? 1 : 0) + " ms");
const fmtPct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(v < 0.1 ? 2 : 1) + " %");
const fmtBurn = (v) => (v === null || v === undefined ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1));
const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch]));

function cell(text, cls) {
  return `<td class="${cls || ""}">${text}</td>`;
}

function latencyTable(region, windows) {
  const head = `<tr><th>SLI</th><th>objective</th>${windows.map((w) => `<th>${w}</th>`).join("")}</tr>`;
  const rows = region.latency.map((row) => {
    const tds = windows.map((w) => {
      const v = row.values_ms[w];
      return cell(fmtMs(v), v === null || v === undefined ? "none" : row.breach[w] ? "breach" : "");
    });
    return `<tr><td>${esc(row.sli)} p${Math.round(row.quantile * 100)}</td><td>≤ ${fmtMs(row.threshold_ms)}</td>${tds.join("")}</tr>`;
  });
  if (region.errors) rows.push(ratioRow("error ratio", region.errors, windows));
  // Exits before start, rebuffering: bad / total per window against the objective.
  for (const r of region.ratios || []) rows.push(ratioRow(`${r.sli.replace(/_/g, " ")} ratio`, r, windows));
  return `<table class="latency">${head}${rows.join("")}</table>`;
}

function ratioRow(name, row, windows) {
  const tds = windows.map((w) => {
    const v = row.ratio[w];
    if (v === null || v === undefined) return cell(fmtPct(v), "none");
    // Above the objective on too few events (the spec's low-traffic guard): amber, not red.
    if (!row.breach[w] && v > row.max_ratio) return `<td class="warn" title="too few events to call a breach">${fmtPct(v)}</td>`;
    return cell(fmtPct(v), row.breach[w] ? "breach" : "");
  });
  return `<tr><td>${esc(name)}</td><td>≤ ${fmtPct(row.max_ratio)}</td>${tds.join("")}</tr>`;
}

function burnTable(region, tiers) {
  const head = `<tr><th>burn rate (long/short)</th>${tiers.map((t) => `<th title="${esc(t.long)}/${esc(t.short)}, ${esc(t.severity)}">${esc(t.name)} ≥${t.factor}</th>`).join("")}<th>budget left</th></tr>`;
  const rows = region.slos.map((s) => {
    const tds = s.tiers.map((t) => {
      const both = t.long !== null && t.short !== null;
      const cls = t.firing ? "breach" : both && (t.long >= t.factor || t.short >= t.factor) ? "warn" : t.long === null ? "none" : "";
      const title = `fires at ${t.factor}x${t.factor !== tiers.find((x) => x.name === t.tier)?.factor ? " (adapted: this SLO cannot burn faster)" : ""}`;
      return `<td class="${cls}" title="${esc(title)}">${fmtBurn(t.long)}/${fmtBurn(t.short)}</td>`;
    });
    const b = s.budget_remaining;
    const width = b === null ? 0 : Math.max(0, Math.min(1, b)) * 100;
    // Below zero the budget is overspent: say by how much (spent 3.2x) rather than "-220 %".
    const text = b !== null && b < 0 ? `spent ${(1 - b).toFixed(1)}×` : fmtPct(b);
    const budget = `<span class="budget${b !== null && b < 0.25 ? " low" : ""}"><i style="width:${width.toFixed(0)}%"></i></span>${text}`;
    return `<tr><td>${esc(s.slo)}</td>${tds.join("")}${cell(budget, b !== null && b <= 0 ? "breach" : "")}</tr>`;
  });
  return `<table class="burn">${head}${rows.join("")}</table>`;
}

function triggerChips(region) {
  return `<div class="triggers">${region.triggers.map((t) => {
    const state = t.firing ? "firing" : t.condition ? "pending" : "";
    const label = t.firing ? "FIRING" : t.condition ? `pending ${Math.round(t.since_s || 0)}s/${Math.round(t.for_s)}s` : "ok";
    return `<span class="trigger ${state}" title="${esc(t.action)}">${esc(t.name)}: ${label}</span>`;
  }).join("")}</div>`;
}

function trendChart(region) {
  const tr = region.trend;
  if (!tr || tr.t.length < 2) return `<div class="legend">trend: collecting…</div>`;
  const W = 440, H = 64, pad = 2;
  const names = Object.keys(tr.series);
  const values = names.flatMap((n) => tr.series[n]).filter((v) => v !== null);
  const thresholds = Object.values(tr.thresholds_ms || {});
  const top = Math.max(1, ...values, ...thresholds) * 1.1;
  const t0 = tr.t[0], t1 = tr.t[tr.t.length - 1];
  const x = (t) => pad + ((t - t0) / Math.max(1e-9, t1 - t0)) * (W - 2 * pad);
  const y = (v) => H - pad - (v / top) * (H - 2 * pad);
  const lines = names.map((n, i) => {
    let d = "", pen = "M";
    tr.series[n].forEach((v, k) => {
      if (v === null) { pen = "M"; return; }
      d += `${pen}${x(tr.t[k]).toFixed(1)},${y(v).toFixed(1)} `;
      pen = "L";
    });
    return `<path class="${i ? "p99" : "p95"}" d="${d}" fill="none" stroke-width="1.6"/>`;
  });
  const thr = Object.entries(tr.thresholds_ms || {}).map(([n, v], i) =>
    `<line class="thr ${i ? "p99" : "p95"}" x1="0" x2="${W}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/>`);
  const span = Math.round(t1 - t0);
  const legend = names.map((n, i) => `<b style="background:${i ? "#8e44ad" : "#2f6fd0"}"></b>${esc(n)}`).join("");
  return `<svg class="trend" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">${thr.join("")}${lines.join("")}</svg>` +
    `<div class="legend">last ${span}s, ${tr.window} window:${legend} (dashed: thresholds)</div>`;
}

function renderRegion(region, status) {
  const label = { ok: "OK", warn: "AT RISK", breach: "BREACH", no_data: "NO DATA" }[region.status] || region.status;
  return `<article class="region ${region.status}" data-region="${esc(region.region)}" data-status="${esc(region.status)}">
    <h2>${esc(region.region)} <span class="badge ${region.status}">${label}</span></h2>
    <div class="sub">${region.events_1m} events in the last ${esc(status.windows[0])}${region.freshness_s === null ? "" : ` · newest event ${region.freshness_s.toFixed(1)} s ago`}${region.incident ? " · <b>demo incident on</b>" : ""}</div>
    ${latencyTable(region, status.windows)}
    ${triggerChips(region)}
    ${burnTable(region, status.tiers)}
    ${trendChart(region)}
  </article>`;
}

function renderDemo(status) {
  const box = document.getElementById("demo");
  if (!status.demo) { box.hidden = true; return; }
  box.hidden = false;
  const on = new Set(status.demo.incidents);
  document.getElementById("demo-buttons").innerHTML = status.regions.map((r) =>
    `<button data-region="${esc(r.region)}" class="${on.has(r.region) ? "on" : ""}">${esc(r.region)}${on.has(r.region) ? " ■ on" : ""}</button>`).join("");
}

async function toggleIncident(ev) {
  const button = ev.target.closest("button[data-region]");
  if (!button) return;
  const on = button.classList.contains("on") ? 0 : 1;
  await fetch(`api/demo/incident?region=${encodeURIComponent(button.dataset.region)}&on=${on}`, { method: "POST" });
  refresh();
}

async function refresh() {
  const updated = document.getElementById("updated");
  try {
    const response = await fetch("api/status", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const status = await response.json();
    document.getElementById("spec-name").textContent = status.spec;
    document.getElementById("kind").textContent = status.kind;
    document.getElementById("regions").innerHTML = status.regions.map((r) => renderRegion(r, status)).join("");
    renderDemo(status);
    updated.textContent = "updated " + new Date(status.generated_at * 1000).toLocaleTimeString();
    document.body.dataset.loaded = "1";
  } catch (err) {
    updated.innerHTML = `<span id="error">status unavailable: ${esc(err.message)}</span>`;
  }
}

document.getElementById("demo-buttons").addEventListener("click", toggleIncident);
refresh();
setInterval(refresh, REFRESH_MS);
