// A conversation (and the inbox) kept live: new messages, edits, read ticks, typing and
// presence arrive over the page's WebSocket; sending posts the same form the page has,
// with upload progress. Without JavaScript the form posts and the page reloads.
import { live, send } from "/static/realtime.js";

const MARKER = "•••";
const TYPING_EVERY_MS = 2_000;
const TYPING_SHOWN_MS = 6_000;

const chat = document.getElementById("chat");
if (chat) conversation(chat);
const inbox = document.getElementById("inbox");
if (inbox) inboxList(inbox);

function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      el.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      el.title = when.toLocaleString();
    }
  }
}

function conversation(chat) {
  const id = chat.dataset.conversation;
  const me = chat.dataset.me;
  const other = chat.dataset.other;
  const text = chat.dataset;
  const list = document.getElementById("messages");
  const typing = document.getElementById("typing");
  const announce = document.getElementById("chat-live");
  let otherRead = Number(chat.dataset.otherRead || 0);
  let typingTimer = 0;
  localTimes(list);
  list.lastElementChild?.scrollIntoView({ block: "end" });

  const shown = () => new Set([...list.children].map((li) => li.dataset.id));

  function body(message) {
    const p = document.createElement("p");
    p.className = "body";
    if (message.deleted) {
      const em = document.createElement("em");
      em.textContent = text.textDeleted;
      p.append(em);
      return p;
    }
    message.body.split(MARKER).forEach((part, i) => {
      if (i) {
        const mark = document.createElement("mark");
        mark.className = "hidden-contact";
        mark.title = text.textHidden;
        mark.textContent = MARKER;
        p.append(mark);
      }
      p.append(document.createTextNode(part));
    });
    return p;
  }

  function tick(seq) {
    const span = document.createElement("span");
    const read = seq <= otherRead;
    span.className = read ? "tick read" : "tick";
    span.dataset.seq = String(seq);
    const icon = document.createElement("span");
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = read ? "✓✓" : "✓";
    const label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = read ? text.textRead : text.textSent;
    span.append(icon, label);
    return span;
  }

  function render(message) {
    const li = document.createElement("li");
    const mine = message.sender_id === me;
    li.className = `message ${message.kind}${message.kind === "system" ? "" : mine ? " mine" : " theirs"}${message.deleted ? " deleted" : ""}`;
    li.id = `m-${message.seq}`;
    li.dataset.id = message.id;
    li.dataset.seq = String(message.seq);
    if (message.kind === "system") {
      const p = document.createElement("p");
      p.className = "body";
      p.textContent = message.body;
      li.append(p);
      return li;
    }
    if (message.kind === "quote" && message.data && message.data.proposal_id) {
      const quote = document.createElement("div");
      quote.className = "quote";
      const link = document.createElement("a");
      link.href = `/proposals/${message.data.proposal_id}`;
      link.textContent = new Intl.NumberFormat(document.documentElement.lang || undefined, {
        style: "currency",
        currency: message.data.currency,
      }).format(message.data.price / 100);
      quote.append(link);
      li.append(quote);
    }
    if (message.body || message.deleted) li.append(body(message));
    if (message.attachments && message.attachments.length && !message.deleted) {
      const files = document.createElement("ul");
      files.className = "files";
      for (const file of message.attachments) {
        const item = document.createElement("li");
        const a = document.createElement("a");
        a.href = `/inbox/${id}/files/${message.id}/${file.id}`;
        a.textContent = file.filename || text.textAttachment;
        item.append(a);
        files.append(item);
      }
      li.append(files);
    }
    const meta = document.createElement("p");
    meta.className = "meta";
    const time = document.createElement("time");
    time.setAttribute("datetime", message.created_at);
    meta.append(time);
    if (message.edited_at && !message.deleted) meta.append(` · ${text.textEdited}`);
    if (mine) meta.append(" ", tick(message.seq));
    li.append(meta);
    localTimes(li);
    return li;
  }

  function place(message) {
    const existing = document.getElementById(`m-${message.seq}`);
    const li = render(message);
    if (existing) { existing.replaceWith(li); return false; }
    document.getElementById("no-messages")?.remove();
    const after = [...list.children].find((el) => Number(el.dataset.seq) > message.seq);
    list.insertBefore(li, after || null);
    li.scrollIntoView({ block: "end", behavior: "smooth" });
    return true;
  }

  async function markRead(message) {
    if (document.visibilityState !== "visible") return;
    const form = new FormData();
    form.append("csrf_token", document.querySelector("input[name=csrf_token]")?.value || "");
    await fetch(`${chat.dataset.readUrl}${message.id}/read`, { method: "POST", body: form });
  }

  live.addEventListener("mesteri:message.new", (e) => {
    const message = e.detail.data;
    if (message.conversation_id !== id || shown().has(message.id)) return;
    place(message);
    if (message.sender_id && message.sender_id !== me) {
      typing.hidden = true;
      if (announce) announce.textContent = message.body;
      markRead(message);
    }
  });
  live.addEventListener("mesteri:message.updated", (e) => {
    if (e.detail.data.conversation_id === id) place(e.detail.data);
  });
  live.addEventListener("mesteri:message.read", (e) => {
    const read = e.detail.data;
    if (read.conversation_id !== id || read.user_id !== other) return;
    otherRead = Math.max(otherRead, read.seq);
    for (const el of list.querySelectorAll(".tick")) {
      if (Number(el.dataset.seq) <= otherRead && !el.classList.contains("read")) el.replaceWith(tick(Number(el.dataset.seq)));
    }
  });
  live.addEventListener("mesteri:typing", (e) => {
    const t = e.detail.data;
    if (t.conversation_id !== id || t.user_id !== other) return;
    typing.hidden = !t.typing;
    clearTimeout(typingTimer);
    if (t.typing) typingTimer = setTimeout(() => { typing.hidden = true; }, TYPING_SHOWN_MS);
  });
  live.addEventListener("mesteri:presence", (e) => {
    const p = e.detail.data;
    for (const el of document.querySelectorAll(`[data-presence-user="${p.user_id}"]`)) {
      el.dataset.online = String(p.status === "online");
      el.textContent = p.status === "online" ? text.textOnline : text.textOffline;
    }
  });
  live.addEventListener("mesteri:resync", () => location.reload());

  const composer = document.getElementById("composer");
  if (!composer) return;
  const textarea = composer.querySelector("textarea");
  let lastTyping = 0;
  textarea.addEventListener("input", () => {
    const now = Date.now();
    if (now - lastTyping > TYPING_EVERY_MS && textarea.value.trim()) {
      lastTyping = now;
      send({ type: "typing", conversation_id: id, typing: true });
    }
  });
  const stopTyping = () => {
    if (lastTyping) send({ type: "typing", conversation_id: id, typing: false });
    lastTyping = 0;
  };
  textarea.addEventListener("blur", stopTyping);
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) composer.requestSubmit();
  });
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    stopTyping();
    const token = composer.querySelector("input[name=client_token]");
    if (!token.value) token.value = crypto.randomUUID();
    const bar = composer.querySelector("progress");
    const status = composer.querySelector(".upload-status");
    const button = composer.querySelector("button[type=submit]");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", composer.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && bar && composer.querySelector("input[type=file]").files.length) {
        bar.hidden = false;
        bar.value = Math.round((e.loaded / e.total) * 100);
      }
    });
    xhr.addEventListener("load", () => {
      button?.removeAttribute("aria-busy");
      if (bar) { bar.hidden = true; bar.value = 0; }
      if (xhr.status === 201) {
        const message = JSON.parse(xhr.responseText);
        if (!shown().has(message.id)) place(message);
        composer.reset();
        token.value = "";
        status.textContent = message.notice || "";
        status.classList.toggle("alert", Boolean(message.notice));
        status.classList.toggle("warning", Boolean(message.notice));
        textarea.focus();
      } else {
        document.open();
        document.write(xhr.responseText);
        document.close();
      }
    });
    xhr.addEventListener("error", () => {
      button?.removeAttribute("aria-busy");
      status.textContent = composer.dataset.error || "The message was not sent. Check your connection and send it again.";
    });
    xhr.send(new FormData(composer));
  });
}

function inboxList(inbox) {
  live.addEventListener("mesteri:message.new", (e) => {
    const message = e.detail.data;
    const row = inbox.querySelector(`[data-conversation="${message.conversation_id}"]`);
    if (!row) { location.reload(); return; }
    const preview = row.querySelector(".preview");
    if (preview && message.body) preview.textContent = message.body;
    if (message.sender_id !== inbox.dataset.me) {
      row.classList.add("unread");
      const count = row.querySelector(".unread-count");
      const n = Number(count.dataset.n || count.textContent.match(/\d+/)?.[0] || 0) + 1;
      count.dataset.n = String(n);
      count.textContent = `${n} ✉`;
      count.hidden = false;
    }
    inbox.prepend(row);
  });
  live.addEventListener("mesteri:presence", (e) => {
    for (const el of inbox.querySelectorAll(`[data-presence-user="${e.detail.data.user_id}"]`)) {
      el.classList.toggle("online", e.detail.data.status === "online");
    }
  });
}
