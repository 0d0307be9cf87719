// Dashboard: polls /api/state and draws the PnL curve on a canvas (no external libraries: the
// dashboard must work on an air-gapped host).
"use strict";

function fmt(x, d) { return (x === null || x === undefined) ? "–" : Number(x).toFixed(d); }

function drawCurve(canvas, points) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 36;
  ctx.fillStyle = "#0f172a";
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = "#334155";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad + (h - 2 * pad) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w - pad, y); ctx.stroke();
  }
  if (!points || points.length < 2) {
    ctx.fillStyle = "#94a3b8"; ctx.font = "14px sans-serif";
    ctx.fillText("no PnL history yet", w / 2 - 60, h / 2);
    return;
  }
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  let y0 = Math.min(0, ...ys), y1 = Math.max(0, ...ys);
  if (y1 - y0 < 1e-9) { y1 += 1; y0 -= 1; }
  const sx = t => pad + (w - 2 * pad) * (x1 > x0 ? (t - x0) / (x1 - x0) : 0);
  const sy = v => h - pad - (h - 2 * pad) * (v - y0) / (y1 - y0);
  ctx.strokeStyle = "#64748b";
  ctx.beginPath(); ctx.moveTo(pad, sy(0)); ctx.lineTo(w - pad, sy(0)); ctx.stroke();
  ctx.strokeStyle = "#22c55e";
  ctx.lineWidth = 3;
  ctx.beginPath();
  points.forEach((p, i) => { if (i === 0) ctx.moveTo(sx(p[0]), sy(p[1])); else ctx.lineTo(sx(p[0]), sy(p[1])); });
  ctx.stroke();
  ctx.fillStyle = "#e2e8f0"; ctx.font = "12px sans-serif";
  ctx.fillText("PnL $ " + fmt(ys[ys.length - 1], 2), pad, 20);
  ctx.fillText(fmt(y1, 2), 2, pad + 4);
  ctx.fillText(fmt(y0, 2), 2, h - pad + 4);
}

function fillRows(tbody, rows, cells) {
  tbody.innerHTML = "";
  rows.forEach(r => {
    const tr = document.createElement("tr");
    cells(r).forEach(c => {
      const td = document.createElement("td");
      td.textContent = c[0];
      if (c[1]) td.className = c[1];
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  });
}

async function refresh() {
  try {
    const resp = await fetch("api/state", { cache: "no-store" });
    const s = await resp.json();
    document.getElementById("mode").textContent = "(" + s.mode + ", " + s.status + ")";
    const sm = s.summary;
    document.getElementById("summary").innerHTML =
      `<span>PnL $${fmt(sm.pnl, 2)}</span><span>trades ${sm.trades}</span>` +
      `<span>win rate ${fmt(sm.win_rate === null ? null : 100 * sm.win_rate, 1)}%</span>` +
      `<span>open ${sm.open_positions}</span><span>exposure $${fmt(sm.exposure, 2)}</span>`;
    drawCurve(document.getElementById("chart"), s.pnl_curve);
    fillRows(document.querySelector("#open tbody"), s.open_positions, p => [
      [p.market], [p.side], [fmt(p.entry_price, 3)], [fmt(p.size_dollars, 2)], [fmt(p.mark, 3)], [fmt(p.age_s, 0)]]);
    fillRows(document.querySelector("#trades tbody"), s.recent_trades, t => [
      [t.market], [t.side], [fmt(t.entry_price, 3)], [fmt(t.exit_price, 3)],
      [fmt(t.pnl, 3), t.pnl >= 0 ? "pos" : "neg"], [t.exit_reason || "open"]]);
  } catch (err) {
    document.getElementById("summary").textContent = "state unavailable: " + err;
  }
}

refresh();
setInterval(refresh, 5000);
