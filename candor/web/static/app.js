// Candor's chat page. Model output arrives as plain text while it streams (textContent) and is
// replaced by HTML that the server rendered and sanitised when the answer ends.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { me: null, csrf: "", conv: null, list: [], abort: null, streaming: false };

async function api(path, { method = "GET", body, raw = false, signal } = {}) {
  const headers = { "content-type": "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = state.csrf;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                       credentials: "same-origin", signal });
  if (raw) return response;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}

async function readEvents(response, onEvent) {
  if (!response.ok) {  // refused before anything was stored (limits, bad input): nothing to show but why
    const data = await response.json().catch(() => ({}));
    const err = new Error((data.error && data.error.message) || response.statusText);
    err.refused = true;
    throw err;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (frame.startsWith("data: ")) onEvent(JSON.parse(frame.slice(6)));
    }
  }
}

// -- views ------------------------------------------------------------------------------------
function show(view) {
  for (const id of ["signin", "waiting", "app"]) $("#" + id).hidden = id !== view;
}

async function boot() {
  try {
    const me = await api("/web/api/me");
    state.me = me;
    state.csrf = me.csrf;
    if (me.pending) return show("waiting");
    show("app");
    $("#whoami").textContent = me.user.username;
    $("#leaderboard-button").hidden = me.user.role !== "admin";
    $("#moderation-button").hidden = me.user.role !== "admin";
    for (const select of [$("#model-select"), $("#model-b-select")]) {
      select.replaceChildren(...me.models.map((m) => new Option(m, m)));
      select.value = me.default_model;
    }
    await refreshList();
    if (state.list.length) await openConversation(state.list[0].id);
    else newConversationView();
  } catch (e) {
    show("signin");
  }
}

async function refreshList() {
  const q = $("#search").value.trim();
  state.list = (await api("/web/api/conversations" + (q ? "?q=" + encodeURIComponent(q) : ""))).data;
  const ul = $("#conversation-list");
  ul.replaceChildren(...state.list.map((c) => {
    const li = document.createElement("li");
    li.dataset.id = c.id;
    li.classList.toggle("active", state.conv && state.conv.id === c.id);
    const open = button(c.title, "open", () => openConversation(c.id));
    open.title = c.title;
    const rename = button("✎", "rename", async () => {
      const title = prompt("Rename conversation", c.title);
      if (title !== null) { await api(`/web/api/conversations/${c.id}`, { method: "PATCH", body: { title } }); await refreshList(); if (state.conv && state.conv.id === c.id) await openConversation(c.id); }
    });
    rename.setAttribute("aria-label", "Rename " + c.title);
    const del = button("×", "delete", async () => {
      if (!confirm("Delete this conversation?")) return;
      await api(`/web/api/conversations/${c.id}`, { method: "DELETE" });
      if (state.conv && state.conv.id === c.id) newConversationView();
      await refreshList();
    });
    del.setAttribute("aria-label", "Delete " + c.title);
    li.append(open, rename, del);
    return li;
  }));
}

function button(label, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function newConversationView() {
  state.conv = null;
  $("#title").textContent = "New conversation";
  $("#messages").replaceChildren();
  $("#totals").textContent = "";
  $("#system-prompt").value = "";
  $("#input").focus();
}

async function openConversation(id) {
  const view = await api(`/web/api/conversations/${id}`);
  renderConversation(view);
  $("#sidebar").classList.remove("open");
  for (const li of document.querySelectorAll("#conversation-list li")) li.classList.toggle("active", Number(li.dataset.id) === id);
}

function renderConversation(view) {
  state.conv = view;
  $("#title").textContent = view.title;
  $("#model-select").value = view.model;
  $("#system-prompt").value = view.system || "";
  $("#messages").replaceChildren(...view.messages.map(messageElement));
  const t = view.totals;
  $("#totals").textContent = `This conversation: ${t.input_tokens} input + ${t.output_tokens} output tokens · $${Number(t.cost_usd).toFixed(6)}`;
  scrollDown();
}

function scrollDown() { const m = $("#messages"); m.scrollTop = m.scrollHeight; }

function statsText(m) {
  const parts = [`${m.output_tokens} tokens`];
  if (m.ttft_ms != null) parts.push(`first token ${(m.ttft_ms / 1000).toFixed(2)} s`);
  if (m.tokens_per_s != null) parts.push(`${Number(m.tokens_per_s).toFixed(1)} tokens/s`);
  if (m.status && m.status !== "done") parts.push(m.status);
  return parts.join(" · ");
}

function setHtml(node, html) {
  node.classList.remove("streaming");
  node.innerHTML = html;  // rendered and sanitised on the server
  for (const pre of node.querySelectorAll("pre")) {
    pre.append(button("Copy", "copy-code", () => navigator.clipboard && navigator.clipboard.writeText(pre.querySelector("code").textContent)));
  }
}

function messageElement(m) {
  const div = document.createElement("article");
  div.className = "msg " + m.role;
  div.dataset.id = m.id;
  const who = document.createElement("div");
  who.className = "who";
  who.append(m.role === "user" ? "You" : (m.model || "Assistant"));
  if (m.siblings && m.siblings.length > 1) who.append(branchNav(m));
  const content = document.createElement("div");
  content.className = "content";
  if (m.role === "assistant" && m.html !== undefined) setHtml(content, m.html);
  else content.textContent = m.content;
  div.append(who, content);
  if (m.role === "assistant") {
    const stats = document.createElement("div");
    stats.className = "stats";
    stats.textContent = statsText(m);
    div.append(stats, assistantActions(m));
  } else {
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(button("Edit", "edit", () => startEdit(div, m)));
    div.append(actions);
  }
  return div;
}

function branchNav(m) {
  const nav = document.createElement("span");
  nav.className = "branch";
  const go = (delta) => switchTo(m.siblings[m.sibling_index + delta]);
  const prev = button("‹", "prev", () => go(-1));
  prev.setAttribute("aria-label", "Previous version");
  prev.disabled = m.sibling_index === 0;
  const next = button("›", "next", () => go(1));
  next.setAttribute("aria-label", "Next version");
  next.disabled = m.sibling_index === m.siblings.length - 1;
  const label = document.createElement("span");
  label.className = "branch-label";
  label.textContent = `${m.sibling_index + 1}/${m.siblings.length}`;
  nav.append(prev, label, next);
  return nav;
}

async function switchTo(messageId) {
  renderConversation(await api(`/web/api/conversations/${state.conv.id}/switch`, { method: "POST", body: { message_id: messageId } }));
}

function assistantActions(m) {
  const actions = document.createElement("div");
  actions.className = "actions";
  const up = button("▲ Good", "thumb-up", () => rate(m, 1, up, down));
  const down = button("▼ Bad", "thumb-down", () => rate(m, -1, up, down));
  up.setAttribute("aria-label", "Good answer");
  down.setAttribute("aria-label", "Bad answer");
  up.setAttribute("aria-pressed", String(m.rating === 1));
  down.setAttribute("aria-pressed", String(m.rating === -1));
  actions.append(up, down, button("Regenerate", "regenerate", () => sendTurn({ content: null, parent_id: m.parent_id })));
  if (m.critiqued) {
    const show = button("Show critiques", "show-critique", () => showCritique(m, show));
    show.setAttribute("aria-expanded", "false");
    actions.append(show);
  }
  return actions;
}

// The draft and the critique/revision rounds behind a self-critiqued answer, as plain text.
async function showCritique(m, toggle) {
  const article = toggle.closest("article");
  const open = $(".critique", article);
  if (open) { open.remove(); toggle.setAttribute("aria-expanded", "false"); return; }
  const data = await api(`/web/api/messages/${m.id}/critique`);
  const box = document.createElement("section");
  box.className = "critique";
  box.setAttribute("aria-label", "Self-critique");
  const part = (title, text) => {
    const h = document.createElement("h4");
    h.textContent = title;
    const p = document.createElement("p");
    p.textContent = text;
    box.append(h, p);
  };
  part("Draft", data.draft);
  for (const step of data.steps) {
    part(`Critique ${step.round} (${step.principle})`, step.critique);
    part(`Revision ${step.round}`, step.revision);
  }
  $(".actions", article).after(box);
  toggle.setAttribute("aria-expanded", "true");
}

async function rate(m, value, up, down) {
  const comment = prompt(value > 0 ? "What was good? (optional)" : "What went wrong? (optional)", "");
  if (comment === null) return;
  await api(`/web/api/messages/${m.id}/rating`, { method: "POST", body: { value, comment } });
  up.setAttribute("aria-pressed", String(value === 1));
  down.setAttribute("aria-pressed", String(value === -1));
}

function startEdit(div, m) {
  const editor = document.createElement("textarea");
  editor.className = "editor";
  editor.value = m.content;
  editor.setAttribute("aria-label", "Edit message");
  const save = button("Save and regenerate", "save", () => sendTurn({ content: editor.value, parent_id: m.parent_id }));
  const cancel = button("Cancel", "secondary", () => renderConversation(state.conv));
  $(".content", div).replaceChildren(editor);
  $(".actions", div).replaceChildren(save, cancel);
  editor.focus();
}

// -- sending ----------------------------------------------------------------------------------
async function ensureConversation() {
  if (state.conv) {
    const system = $("#system-prompt").value;
    const model = $("#model-select").value;
    if ((state.conv.system || "") !== system.trim() || state.conv.model !== model) {
      state.conv = await api(`/web/api/conversations/${state.conv.id}`, { method: "PATCH", body: { system, model } });
    }
    return state.conv;
  }
  state.conv = await api("/web/api/conversations", { method: "POST", body: { model: $("#model-select").value, system: $("#system-prompt").value } });
  return state.conv;
}

function lastId() {
  const msgs = state.conv.messages;
  return msgs.length ? msgs[msgs.length - 1].id : null;
}

function setStreaming(on) {
  state.streaming = on;
  $("#send").hidden = on;
  $("#stop").hidden = !on;
}

function showNotice(text) {  // stays until the next send: the conversation view is redrawn under it
  $("#notice").textContent = text;
  $("#notice").hidden = !text;
}

// A refused turn (over a rate or spend limit) stored nothing: say why and give the text back.
function refused(e, text) {
  if (!e.refused) return false;
  showNotice(e.message);
  if (text && !$("#input").value) $("#input").value = text;
  return true;
}

async function submit() {
  const text = $("#input").value;
  if (!text.trim() || state.streaming) return;
  document.body.classList.add("busy");  // set before the first await: tests and styles can rely on it
  showNotice("");
  try {
    await ensureConversation();
    $("#input").value = "";
    if ($("#compare-toggle").checked) await compareTurn(text);
    else await sendTurn({ content: text, parent_id: lastId() });
  } finally {
    document.body.classList.remove("busy");
  }
}

function maxTokens() { return Math.max(1, parseInt($("#max-tokens").value, 10) || 1024); }
function temperature() {  // null: the model's own default
  const t = parseFloat($("#temperature").value);
  return Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : null;
}

async function sendTurn(body) {
  showNotice("");
  const conv = await ensureConversation();
  body = { ...body, max_tokens: maxTokens() };
  if (temperature() !== null) body.temperature = temperature();
  if ($("#critique-toggle").checked) body.self_critique = 1;
  document.body.classList.add("busy");
  const messages = $("#messages");
  if (body.content !== null && body.content !== undefined) {
    messages.append(messageElement({ role: "user", content: body.content, id: "pending" }));
  }
  const answer = messageElement({ role: "assistant", content: "", model: $("#model-select").value, output_tokens: 0 });
  const content = $(".content", answer);
  content.classList.add("streaming");
  messages.append(answer);
  scrollDown();
  state.abort = new AbortController();
  setStreaming(true);
  try {
    const response = await api(`/web/api/conversations/${conv.id}/messages`, { method: "POST", body, raw: true, signal: state.abort.signal });
    await readEvents(response, (ev) => {
      if (ev.type === "delta") { content.textContent += ev.text; scrollDown(); }
      if (ev.type === "done") { setHtml(content, ev.html); $(".stats", answer).textContent = statsText(ev); }
    });
  } catch (e) {
    if (e.name !== "AbortError" && !refused(e, body.content)) $(".stats", answer).textContent = "error: " + e.message;
  } finally {
    setStreaming(false);
    state.abort = null;
    await openConversation(conv.id);
    await refreshList();
    document.body.classList.remove("busy");
  }
}

async function compareTurn(text) {
  const conv = state.conv;
  const messages = $("#messages");
  messages.append(messageElement({ role: "user", content: text, id: "pending" }));
  const box = document.createElement("div");
  box.className = "compare";
  box.id = "compare-view";
  const columns = {};
  for (const side of ["a", "b"]) {
    const col = document.createElement("div");
    col.className = "column";
    col.dataset.side = side;
    const h = document.createElement("h3");
    h.textContent = `Answer ${side.toUpperCase()} · ${side === "a" ? $("#model-select").value : $("#model-b-select").value}`;
    const c = document.createElement("div");
    c.className = "content streaming";
    const st = document.createElement("div");
    st.className = "stats";
    col.append(h, c, st);
    columns[side] = col;
    box.append(col);
  }
  messages.append(box);
  scrollDown();
  state.abort = new AbortController();
  setStreaming(true);
  let voteId = null;
  try {
    const response = await api(`/web/api/conversations/${conv.id}/compare`, { method: "POST", raw: true, signal: state.abort.signal,
      body: { content: text, parent_id: lastId(), model_a: $("#model-select").value, model_b: $("#model-b-select").value, max_tokens: maxTokens() } });
    await readEvents(response, (ev) => {
      const col = columns[ev.side];
      if (ev.type === "delta") { $(".content", col).textContent += ev.text; scrollDown(); }
      if (ev.type === "done") { setHtml($(".content", col), ev.html); $(".stats", col).textContent = statsText(ev); }
      if (ev.type === "compared") voteId = ev.vote_id;
    });
  } catch (e) {
    if (e.name !== "AbortError" && !refused(e, text)) columns.a.append("error: " + e.message);
  } finally {
    setStreaming(false);
    state.abort = null;
  }
  if (voteId !== null) box.append(voteBar(voteId));
  else await openConversation(conv.id);
}

// Administrators review what moderation flagged (text only when the deployment keeps it).
async function showFlagged() {
  const unreviewed = $("#moderation-unreviewed").checked;
  const rows = (await api(`/web/api/moderation/events${unreviewed ? "?unreviewed=true" : ""}`)).data;
  $("#moderation tbody").replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    const cells = [new Date(r.created_at).toLocaleString(), r.stage, r.action, r.category || "–",
                   `${r.score.toFixed(2)} / ${r.threshold.toFixed(2)}`, r.model, r.text == null ? "(not kept)" : r.text];
    for (const v of cells) { const td = document.createElement("td"); td.textContent = String(v); tr.append(td); }
    const td = document.createElement("td");
    if (r.reviewed) td.textContent = "reviewed";
    else {
      const b = document.createElement("button");
      b.type = "button"; b.className = "secondary"; b.textContent = "Mark reviewed";
      b.addEventListener("click", async () => { await api(`/web/api/moderation/events/${r.id}/reviewed`, { method: "POST" }); showFlagged(); });
      td.append(b);
    }
    tr.append(td);
    return tr;
  }));
  $("#moderation-empty").hidden = rows.length > 0;
  $("#leaderboard").hidden = true;
  $("#moderation").hidden = false;
  $("#messages").hidden = true;
}

function voteBar(voteId) {
  const bar = document.createElement("div");
  bar.className = "vote";
  const comment = document.createElement("textarea");
  comment.id = "vote-comment";
  comment.rows = 2;
  comment.placeholder = "Why? (optional)";
  comment.setAttribute("aria-label", "Comment on your vote");
  const cast = (choice) => async () => {
    const view = await api(`/web/api/votes/${voteId}`, { method: "POST", body: { choice, comment: comment.value } });
    renderConversation(view);
  };
  const label = document.createElement("span");
  label.textContent = "Which answer is better?";
  const a = button("A is better", "", cast("a")); a.id = "vote-a";
  const b = button("B is better", "", cast("b")); b.id = "vote-b";
  const tie = button("Tie", "secondary", cast("tie")); tie.id = "vote-tie";
  const bad = button("Both bad", "secondary", cast("both_bad")); bad.id = "vote-bad";
  bar.append(label, a, b, tie, bad, comment);
  return bar;
}

// -- wiring -----------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#signin-error").textContent = "";
    try {
      await api("/web/api/signin", { method: "POST", body: { username: $("#username").value, password: $("#password").value } });
      await boot();
    } catch (err) { $("#signin-error").textContent = err.message; }
  });
  $("#signup-button").addEventListener("click", async () => {
    $("#signin-error").textContent = "";
    try {
      await api("/web/api/signup", { method: "POST", body: { username: $("#username").value, password: $("#password").value } });
      await api("/web/api/signin", { method: "POST", body: { username: $("#username").value, password: $("#password").value } });
      await boot();
    } catch (err) { $("#signin-error").textContent = err.message; }
  });
  for (const id of ["#signout", "#waiting-signout"]) {
    $(id).addEventListener("click", async () => { await api("/web/api/signout", { method: "POST" }); location.reload(); });
  }
  $("#composer").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  $("#input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  $("#stop").addEventListener("click", () => state.abort && state.abort.abort());
  $("#new-chat").addEventListener("click", () => { newConversationView(); refreshList(); });
  let searchTimer = null;
  $("#search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(refreshList, 200); });
  $("#compare-toggle").addEventListener("change", (e) => document.body.classList.toggle("comparing", e.target.checked));
  $("#menu-button").addEventListener("click", () => $("#sidebar").classList.toggle("open"));
  $("#leaderboard-button").addEventListener("click", async () => {
    const rows = (await api("/web/api/leaderboard")).data;
    $("#leaderboard tbody").replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      for (const v of [r.model, r.elo, r.win_rate == null ? "–" : (100 * r.win_rate).toFixed(1) + "%", r.wins, r.losses, r.draws, r.votes]) {
        const td = document.createElement("td"); td.textContent = String(v); tr.append(td);
      }
      return tr;
    }));
    $("#leaderboard").hidden = false;
    $("#messages").hidden = true;
  });
  $("#leaderboard-close").addEventListener("click", () => { $("#leaderboard").hidden = true; $("#messages").hidden = false; });
  $("#moderation-button").addEventListener("click", showFlagged);
  $("#moderation-unreviewed").addEventListener("change", showFlagged);
  $("#moderation-close").addEventListener("click", () => { $("#moderation").hidden = true; $("#messages").hidden = false; });
  boot();
});
