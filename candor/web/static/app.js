// Candor's chat page. Model output arrives as plain text while it streams (textContent) and is
// replaced by HTML that the server rendered and sanitised when the answer ends.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { me: null, csrf: "", conv: null, list: [], abort: null, streaming: false, attachments: [], view: 0 };

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
  state.view += 1;  // a conversation still loading must not replace this one
  state.conv = null;
  $("#title").textContent = "New conversation";
  $("#messages").replaceChildren();
  $("#totals").textContent = "";
  $("#system-prompt").value = "";
  state.attachments = [];
  renderAttachments();
  $("#input").focus();
}

async function openConversation(id) {
  const ticket = ++state.view;
  const view = await api(`/web/api/conversations/${id}`);
  if (ticket !== state.view) return;  // another conversation (or a new one) was opened meanwhile
  renderConversation(view);
  await loadAttachments();
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
    decorateAnswer(div, m);
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
  actions.append(up, down);
  if (!m.summary) actions.append(button("Regenerate", "regenerate", () => sendTurn({ content: null, parent_id: m.parent_id })));
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
      if (ev.type === "done") { setHtml(content, ev.html); $(".stats", answer).textContent = statsText(ev); decorateAnswer(answer, ev); }
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
      if (ev.type === "done") { setHtml($(".content", col), ev.html); $(".stats", col).textContent = statsText(ev); decorateAnswer(col, ev); }
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

// -- documents: citations, attachments, summaries ------------------------------------------------
// An answer about attachments: numbered buttons after cited sentences (the server put them in the
// sanitised HTML), a list of its sources, and what went into the prompt. A click opens the quoted
// passage with its document and location. A summary lists the parts it was made from.
function decorateAnswer(box, data) {
  for (const old of box.querySelectorAll(".sources, .doc-note, .summary-parts, .citation-panel")) old.remove();
  const content = $(".content", box);
  const extras = [];
  const citations = data.citations || [];
  if (citations.length) {
    const byNumber = new Map(citations.map((c) => [c.n, c]));
    for (const b of content.querySelectorAll("button.cite")) {
      const c = byNumber.get(Number(b.dataset.cite));
      if (c) b.addEventListener("click", () => toggleCitation(box, c));
    }
    const list = document.createElement("ol");
    list.className = "sources";
    list.setAttribute("aria-label", "Sources");
    for (const c of citations) {
      const li = document.createElement("li");
      const b = button(`[${c.n}] ${c.document_title || "Document"}, ${c.location}`, "source", () => toggleCitation(box, c));
      b.dataset.cite = c.n;
      b.setAttribute("aria-expanded", "false");
      li.append(b);
      list.append(li);
    }
    extras.push(list);
  }
  if (data.placements && data.placements.length) {
    const note = document.createElement("div");
    note.className = "doc-note";
    note.textContent = "Documents: " + data.placements.join("; ");
    extras.push(note);
  }
  if (data.summary) extras.push(summaryParts(data.summary));
  content.after(...extras);
}

function toggleCitation(box, c) {
  const open = $(".citation-panel", box);
  const same = open && open.dataset.cite === String(c.n);
  if (open) open.remove();
  for (const b of box.querySelectorAll("button[data-cite]")) b.setAttribute("aria-expanded", "false");
  if (same) return;
  const panel = document.createElement("aside");
  panel.className = "citation-panel";
  panel.dataset.cite = c.n;
  panel.setAttribute("role", "region");
  panel.setAttribute("aria-label", `Source ${c.n}`);
  const title = document.createElement("h4");
  title.textContent = `[${c.n}] ${c.document_title || "Document"}`;
  const where = document.createElement("p");
  where.className = "where";
  where.textContent = c.location;
  const quote = document.createElement("blockquote");
  quote.className = "cited-text";
  quote.textContent = c.cited_text;
  panel.append(title, where, quote, button("Close", "secondary close-citation", () => toggleCitation(box, c)));
  ($(".sources", box) || $(".content", box)).after(panel);
  for (const b of box.querySelectorAll(`button[data-cite="${c.n}"]`)) b.setAttribute("aria-expanded", "true");
}

function summaryParts(summary) {
  const parts = summary.parts || [];
  const box = document.createElement(parts.length ? "details" : "div");
  box.className = "summary-parts";
  const head = document.createElement(parts.length ? "summary" : "span");
  head.textContent = parts.length ? `Summary of ${summary.title}, made from ${parts.length} parts` :
    `Summary of ${summary.title}, read whole`;
  box.append(head);
  if (parts.length) {
    const list = document.createElement("ol");
    for (const part of parts) {
      const li = document.createElement("li");
      const where = document.createElement("strong");
      where.textContent = part.location + ": ";
      li.append(where, part.summary);
      list.append(li);
    }
    box.append(list);
  }
  return box;
}

async function loadAttachments() {
  const conv = state.conv;
  const list = conv ? (await api(`/web/api/conversations/${conv.id}/attachments`)).data : [];
  if (state.conv !== conv) return;  // the page moved to another conversation meanwhile
  state.attachments = list;
  renderAttachments();
}

function sizeText(bytes) {
  return bytes < 1024 ? `${bytes} bytes` : bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
}

function renderAttachments(pending = []) {
  const ul = $("#attachments");
  const waiting = pending.map((name) => {
    const li = document.createElement("li");
    li.className = "attachment pending";
    li.textContent = `Attaching ${name}…`;
    return li;
  });
  ul.replaceChildren(...state.attachments.map(attachmentItem), ...waiting);
  ul.hidden = ul.children.length === 0;
}

function attachmentItem(a) {
  const li = document.createElement("li");
  li.className = "attachment";
  li.dataset.id = a.id;
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = a.filename;
  const facts = document.createElement("span");
  facts.className = "facts";
  const pages = a.pages == null ? sizeText(a.size_bytes) : `${a.pages} ${a.pages === 1 ? "page" : "pages"}`;
  facts.textContent = `${pages} · ${a.tokens == null ? "?" : a.tokens.toLocaleString("en")} tokens`;
  const summarise = button("Summarise", "summarise", () => summariseFile(a));
  summarise.setAttribute("aria-label", "Summarise " + a.filename);
  const remove = button("×", "remove", async () => {
    await api(`/web/api/conversations/${state.conv.id}/attachments/${a.id}`, { method: "DELETE" });
    await loadAttachments();
  });
  remove.setAttribute("aria-label", "Remove " + a.filename);
  li.append(name, facts, summarise, remove);
  return li;
}

// Each file is read on the server before it is stored: one that cannot be read (type, size, no
// text layer…) is not attached, and the notice says why.
async function attachFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length || state.streaming) return;
  showNotice("");
  document.body.classList.add("busy");
  const refused = [];
  try {
    const conv = await ensureConversation();
    for (const [i, file] of files.entries()) {
      renderAttachments(files.slice(i).map((f) => f.name));
      const form = new FormData();
      form.append("file", file, file.name);
      const response = await fetch(`/web/api/conversations/${conv.id}/attachments`, {
        method: "POST", body: form, headers: { "x-csrf-token": state.csrf }, credentials: "same-origin" });
      const data = await response.json().catch(() => ({}));
      if (response.ok) state.attachments.push(data);
      else refused.push(`${file.name}: ${((data.error && data.error.message) || response.statusText).replace(/^file: /, "")}`);
    }
    renderAttachments();
    if (refused.length) showNotice("Not attached. " + refused.join(" · "));
    await refreshList();
  } catch (e) {
    showNotice("Not attached: " + e.message);
    renderAttachments();
  } finally {
    $("#attach-input").value = "";
    document.body.classList.remove("busy");
  }
}

function showProgress(ev, a) {
  const label = $("#summary-label");
  const bar = $("#summary-bar");
  if (ev.stage === "map") {
    bar.max = ev.total;
    bar.value = ev.done;
    label.textContent = ev.done < ev.total ? `Summarising ${a.filename}: part ${ev.done + 1} of ${ev.total}…`
      : `Summarised all ${ev.total} parts of ${a.filename}`;
  } else if (ev.stage === "reduce") {
    label.textContent = `Combining the part summaries of ${a.filename}…`;
  } else if (ev.stage === "waiting") {
    label.textContent = `Waiting for your rate limit (retry in ${ev.retry_after} s)…`;
  } else {
    bar.removeAttribute("value");  // indeterminate until the parts are known
    label.textContent = `Summarising ${a.filename}…`;
  }
}

// "Summarise": a structured summary of one attachment, with the server's progress shown as it
// works (each part of a long document, then the combining step); stored as a turn when done.
async function summariseFile(a) {
  if (state.streaming || !state.conv) return;
  showNotice("");
  const conv = state.conv;
  const box = $("#summary-progress");
  showProgress({ stage: "start" }, a);
  box.hidden = false;
  document.body.classList.add("busy");
  state.abort = new AbortController();
  setStreaming(true);
  try {
    const response = await api(`/web/api/conversations/${conv.id}/attachments/${a.id}/summary`, {
      method: "POST", raw: true, signal: state.abort.signal,
      body: { parent_id: lastId(), max_tokens: Math.min(maxTokens(), 300) } });
    await readEvents(response, (ev) => {
      if (ev.type === "progress") showProgress(ev, a);
      if (ev.type === "error") showNotice(`The summary of ${a.filename} failed: ${ev.message}`);
    });
  } catch (e) {
    if (e.name !== "AbortError") showNotice(`The summary of ${a.filename} failed: ${e.message}`);
  } finally {
    setStreaming(false);
    state.abort = null;
    box.hidden = true;
    await openConversation(conv.id);
    await refreshList();
    document.body.classList.remove("busy");
  }
}

function hasFiles(e) { return e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files"); }

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
  $("#attach-button").addEventListener("click", () => $("#attach-input").click());
  $("#attach-input").addEventListener("change", (e) => attachFiles(e.target.files));
  const chat = $("#chat");
  let dragDepth = 0;  // dragenter/dragleave fire for every child the pointer crosses
  chat.addEventListener("dragenter", (e) => { if (hasFiles(e)) { e.preventDefault(); dragDepth += 1; chat.classList.add("dragging"); } });
  chat.addEventListener("dragover", (e) => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; } });
  chat.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) chat.classList.remove("dragging"); });
  chat.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    chat.classList.remove("dragging");
    attachFiles(e.dataTransfer.files);
  });
  for (const kind of ["dragover", "drop"]) {  // a file dropped beside the chat must not replace the page
    window.addEventListener(kind, (e) => { if (hasFiles(e)) e.preventDefault(); });
  }
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
