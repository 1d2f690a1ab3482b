// The chat page of `roomstreams up` (local development mode), on the browser client's
// livekit-client API. Chat messages are what LiveKit's chat components send and read: the
// message as the text of a text stream on topic "lk.chat"; the stream's id and timestamp are
// the message's id and timestamp. Files go as byte streams on topic "files".
import { Room, RoomEvent } from "./roomstreams.js";

const CHAT_TOPIC = "lk.chat";
const FILE_TOPIC = "files";

const $ = (selector) => document.querySelector(selector);
const joinForm = $("#join");
const chat = $("#chat");
const statusEl = $("#status");
const messages = $("#messages");
const participantsEl = $("#participants");
const errorEl = $("#error");

/** @type {Room | null} */
let room = null;

// -- small helpers ---------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

function showError(message) {
  errorEl.textContent = message;
  errorEl.hidden = !message;
}

function displayName(identity) {
  if (room && identity === room.localParticipant.identity) {
    return `${room.localParticipant.name || identity} (you)`;
  }
  const p = room?.remoteParticipants.get(identity);
  return p?.name || identity;
}

function formatSize(bytes) {
  if (bytes === undefined || bytes === null) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function scrollToEnd() {
  messages.scrollTop = messages.scrollHeight;
}

/** A message bubble: `.who`, `.text` (or a file's `.file-name`, `progress`, `a.download`). */
function addBubble({ from, timestamp, mine, kind = "text" }) {
  const li = el("li", `msg ${kind}${mine ? " mine" : ""}`);
  li.dataset.from = from;
  li.dataset.state = mine ? "sending" : "streaming";
  const meta = el("div", "meta");
  meta.append(el("span", "who", displayName(from)));
  const time = el("time", "", new Date(timestamp || Date.now()).toLocaleTimeString());
  meta.append(time);
  li.append(meta);
  messages.append(li);
  scrollToEnd();
  return li;
}

function setNote(li, text) {
  let note = li.querySelector(".note");
  if (!note) {
    note = el("div", "note");
    li.append(note);
  }
  note.textContent = text;
}

// -- participants ------------------------------------------------------------------------------

function renderParticipants() {
  participantsEl.replaceChildren();
  if (!room) return;
  const people = [room.localParticipant, ...room.remoteParticipants.values()];
  for (const p of people) {
    const li = el("li", "participant", displayName(p.identity));
    li.dataset.identity = p.identity;
    participantsEl.append(li);
  }
}

// -- incoming ----------------------------------------------------------------------------------

async function onChatStream(reader, participantInfo) {
  const { id, timestamp } = reader.info;
  const li = addBubble({ from: participantInfo.identity, timestamp, mine: false });
  li.dataset.id = id;
  const textEl = el("div", "text");
  li.append(textEl);
  let text = "";
  try {
    for await (const chunk of reader) {
      text += chunk; // the bubble grows as the chunks arrive (an LLM's tokens, say)
      textEl.textContent = text;
      scrollToEnd();
    }
    li.dataset.state = "done";
  } catch (err) {
    li.dataset.state = "aborted";
    setNote(li, String(err?.message ?? err)); // the reason, as the client says it
  }
}

async function onFileStream(reader, participantInfo) {
  const { id, timestamp, name, mimeType, size } = reader.info;
  const li = addBubble({ from: participantInfo.identity, timestamp, mine: false, kind: "file" });
  li.dataset.id = id;
  li.append(el("div", "file-name", `${name || "file"} ${formatSize(size)}`.trim()));
  const bar = el("progress");
  bar.max = 1;
  bar.value = 0;
  li.append(bar);
  reader.onProgress = (progress) => {
    if (progress !== undefined) bar.value = progress;
  };
  try {
    const chunks = await reader.readAll();
    const blob = new Blob(chunks, { type: mimeType || "application/octet-stream" });
    bar.value = 1;
    const link = el("a", "download", `Download ${name || "file"}`);
    link.href = URL.createObjectURL(blob);
    link.download = name || "file";
    li.append(link);
    li.dataset.state = "done";
  } catch (err) {
    li.dataset.state = "aborted";
    setNote(li, String(err?.message ?? err));
  }
}

// -- outgoing ----------------------------------------------------------------------------------

async function sendMessage(text) {
  const li = addBubble({ from: room.localParticipant.identity, timestamp: Date.now(), mine: true });
  li.append(el("div", "text", text));
  try {
    const info = await room.localParticipant.sendText(text, { topic: CHAT_TOPIC });
    li.dataset.id = info.id;
    li.dataset.state = "done";
  } catch (err) {
    li.dataset.state = "failed";
    setNote(li, `not sent: ${err?.message ?? err}`);
  }
}

async function sendFile(file) {
  const li = addBubble({
    from: room.localParticipant.identity,
    timestamp: Date.now(),
    mine: true,
    kind: "file",
  });
  li.append(el("div", "file-name", `${file.name} ${formatSize(file.size)}`));
  const bar = el("progress");
  bar.max = 1;
  bar.value = 0;
  li.append(bar);
  try {
    const info = await room.localParticipant.sendFile(file, {
      topic: FILE_TOPIC,
      mimeType: file.type || "application/octet-stream",
      onProgress: (progress) => {
        bar.value = progress;
      },
    });
    bar.value = 1;
    li.dataset.id = info.id;
    li.dataset.state = "done";
  } catch (err) {
    li.dataset.state = "failed";
    setNote(li, `not sent: ${err?.message ?? err}`);
  }
}

// -- joining and leaving -----------------------------------------------------------------------

async function fetchToken(roomName, identity, name) {
  const query = new URLSearchParams({ room: roomName, identity, name });
  const res = await fetch(`/dev/token?${query}`, { cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw new Error(body?.error?.message ?? `token endpoint answered ${res.status}`);
  }
  return body.token;
}

async function join(roomName, identity, name) {
  showError("");
  setStatus("connecting", "connecting…");
  const token = await fetchToken(roomName, identity, name);
  const r = new Room();
  r.registerTextStreamHandler(CHAT_TOPIC, onChatStream);
  r.registerByteStreamHandler(FILE_TOPIC, onFileStream);
  r.on(RoomEvent.ParticipantConnected, renderParticipants);
  r.on(RoomEvent.ParticipantDisconnected, renderParticipants);
  r.on(RoomEvent.ParticipantNameChanged, renderParticipants);
  r.on(RoomEvent.Reconnecting, () => setStatus("reconnecting", "reconnecting…"));
  r.on(RoomEvent.Reconnected, () => {
    setStatus("connected", `connected as ${identity}`);
    renderParticipants();
  });
  r.on(RoomEvent.Disconnected, (reason) => {
    setStatus("disconnected", "disconnected");
    if (room === r && reason !== undefined && reason !== "client initiated disconnect") {
      showError(`disconnected: ${reason}`);
    }
  });
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  await r.connect(`${scheme}://${location.host}`, token);
  room = r;
  $("#room-name").textContent = roomName;
  joinForm.hidden = true;
  chat.hidden = false;
  setStatus("connected", `connected as ${identity}`);
  renderParticipants();
  $("#message").focus();
}

async function leave() {
  const r = room;
  room = null;
  await r?.disconnect();
  messages.replaceChildren();
  participantsEl.replaceChildren();
  chat.hidden = true;
  joinForm.hidden = false;
  setStatus("disconnected", "not connected");
}

joinForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(joinForm);
  const button = joinForm.querySelector("button");
  button.disabled = true;
  try {
    await join(
      String(data.get("room")).trim(),
      String(data.get("identity")).trim(),
      String(data.get("name") ?? "").trim(),
    );
  } catch (err) {
    setStatus("disconnected", "not connected");
    showError(`could not join: ${err?.message ?? err}`);
  } finally {
    button.disabled = false;
  }
});

$("#composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("#message");
  const text = input.value;
  if (!text.trim() || !room) return;
  input.value = "";
  void sendMessage(text);
});

$("#file-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("#file");
  const file = input.files?.[0];
  if (!file || !room) return;
  input.value = "";
  void sendFile(file);
});

$("#leave").addEventListener("click", () => void leave());

// ?room=demo&identity=alice&name=Alice fills the form in
const params = new URLSearchParams(location.search);
for (const field of ["room", "identity", "name"]) {
  const value = params.get(field);
  if (value) joinForm.elements.namedItem(field).value = value;
}
