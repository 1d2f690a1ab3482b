// A roomstreams participant in Node, driven by the interop tests (tests/integration/test_js_interop.py).
// It uses the built package (shared/js/dist). Commands come as JSON lines on stdin, events go out
// as JSON lines on stdout:
//   {"cmd": "connect", "id": 1, "url": "...", "token": "...", "text_topics": ["chat"], "byte_topics": ["files"]}
//   -> {"ev": "result", "id": 1, "ok": true, "value": {...}} or {"ev": "result", "id": 1, "ok": false, "error": {...}}
// and events such as {"ev": "text_done", ...}, {"ev": "text_error", ...}, {"ev": "data", ...}.
import { createHash } from "node:crypto";
import { openAsBlob, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { basename, join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist =
  process.env.ROOMSTREAMS_JS ??
  join(here, "../../shared/js/dist/roomstreams.js");
const rs = await import(pathToFileURL(dist).href);
const { Room, RoomEvent } = rs;

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const errorOf = (e) => ({
  name: e?.name ?? "Error",
  code: e?.code ?? "",
  message: String(e?.message ?? e),
  reason: e?.reason ?? "",
  data: e?.data ?? null,
});

/** The text `big_text` commands send: multi-byte characters of every UTF-8 length, so chunk
 * cuts fall next to them; deterministic, so both sides can reproduce it. */
function bigText(bytes) {
  const unit = "roomstreams: é ö ß € 漢字 😀 🎉 — ";
  const unitBytes = Buffer.byteLength(unit);
  return unit.repeat(Math.ceil(bytes / unitBytes));
}

let room;
const writers = new Map();
let mode = "all";

function textHandler(reader, who) {
  const info = reader.info;
  out({
    ev: "text_open",
    stream_id: info.id,
    topic: info.topic,
    sender: who.identity,
    size: info.size ?? null,
    attributes: info.attributes,
    destinations: info.destinationIdentities,
    attached: info.attachedStreamIds,
  });
  (async () => {
    const parts = [];
    try {
      for await (const chunk of reader) {
        parts.push(chunk);
        if (mode === "chunks")
          out({
            ev: "text_chunk",
            stream_id: info.id,
            index: parts.length - 1,
            text: chunk,
          });
      }
      const text = parts.join("");
      out({
        ev: "text_done",
        stream_id: info.id,
        topic: info.topic,
        sender: who.identity,
        length: text.length,
        bytes: Buffer.byteLength(text),
        sha256: sha256(text),
        text: text.length <= 20000 ? text : null,
        chunks: parts.length,
        attributes: reader.info.attributes,
      });
    } catch (e) {
      out({
        ev: "text_error",
        stream_id: info.id,
        topic: info.topic,
        sender: who.identity,
        received: parts.join(""),
        error: errorOf(e),
        is_stream_aborted: e instanceof rs.StreamAborted,
      });
    }
  })();
}

function byteHandler(reader, who) {
  const info = reader.info;
  let progressCalls = 0;
  let lastProgress = null;
  reader.onProgress = (p) => {
    progressCalls += 1;
    lastProgress = p ?? null;
  };
  out({
    ev: "bytes_open",
    stream_id: info.id,
    topic: info.topic,
    sender: who.identity,
    name: info.name,
    size: info.size ?? null,
    mime_type: info.mimeType,
  });
  (async () => {
    const hash = createHash("sha256");
    let size = 0;
    try {
      for await (const chunk of reader) {
        hash.update(chunk);
        size += chunk.byteLength;
      }
      out({
        ev: "bytes_done",
        stream_id: info.id,
        topic: info.topic,
        sender: who.identity,
        name: info.name,
        size,
        sha256: hash.digest("hex"),
        mime_type: info.mimeType,
        progress_calls: progressCalls,
        last_progress: lastProgress,
        attributes: reader.info.attributes,
      });
    } catch (e) {
      out({
        ev: "bytes_error",
        stream_id: info.id,
        sender: who.identity,
        size,
        error: errorOf(e),
      });
    }
  })();
}

function watch(r) {
  r.on(RoomEvent.ParticipantConnected, (p) =>
    out({ ev: "participant_connected", identity: p.identity, name: p.name }),
  );
  r.on(RoomEvent.ParticipantDisconnected, (p) =>
    out({ ev: "participant_disconnected", identity: p.identity }),
  );
  r.on(RoomEvent.Reconnecting, () => out({ ev: "reconnecting" }));
  r.on(RoomEvent.Reconnected, () =>
    out({ ev: "reconnected", remote: [...r.remoteParticipants.keys()].sort() }),
  );
  r.on(RoomEvent.Disconnected, (reason) =>
    out({ ev: "disconnected", reason: reason ?? "" }),
  );
  r.on(RoomEvent.ConnectionStateChanged, (state) =>
    out({ ev: "state", state }),
  );
  r.on(RoomEvent.ParticipantAttributesChanged, (changed, p) =>
    out({
      ev: "attributes_changed",
      identity: p.identity,
      changed,
      attributes: p.attributes,
    }),
  );
  r.on(RoomEvent.ParticipantMetadataChanged, (prev, p) =>
    out({
      ev: "metadata_changed",
      identity: p.identity,
      prev: prev ?? null,
      metadata: p.metadata,
    }),
  );
  r.on(RoomEvent.ParticipantNameChanged, (name, p) =>
    out({ ev: "name_changed", identity: p.identity, name }),
  );
  r.on(RoomEvent.DataReceived, (payload, participant, kind, topic) =>
    out({
      ev: "data",
      payload_b64: Buffer.from(payload).toString("base64"),
      sender: participant?.identity ?? null,
      kind,
      topic: topic ?? "",
    }),
  );
}

// the most the socket held unsent when a frame was handed to it (the client's send window)
let maxBuffered = 0;
let lastBuffered = 0;

async function trackingWebSocket() {
  const require = createRequire(join(here, "../../shared/js/package.json"));
  const mod = await import(pathToFileURL(require.resolve("ws")).href);
  const WebSocket = mod.WebSocket ?? mod.default;
  return class TrackingWebSocket extends WebSocket {
    send(data, ...rest) {
      lastBuffered = this.bufferedAmount;
      if (lastBuffered >= 64 * 1024 && maxBuffered < 64 * 1024)
        out({ ev: "backlog", buffered: lastBuffered });
      maxBuffered = Math.max(maxBuffered, lastBuffered);
      return super.send(data, ...rest);
    }
  };
}

const commands = {
  async connect(c) {
    mode = c.mode ?? "all";
    const options = { ...(c.options ?? {}) };
    if (c.track_buffer) options.webSocket = await trackingWebSocket();
    room = new Room(options);
    watch(room);
    for (const t of c.text_topics ?? [])
      room.registerTextStreamHandler(t, textHandler);
    for (const t of c.byte_topics ?? [])
      room.registerByteStreamHandler(t, byteHandler);
    await room.connect(c.url, c.token, c.connect_options ?? {});
    return {
      name: room.name,
      identity: room.localParticipant.identity,
      state: room.state,
      remote: [...room.remoteParticipants.keys()].sort(),
    };
  },
  async register(c) {
    if (c.kind === "byte")
      await room.registerByteStreamHandler(c.topic, byteHandler);
    else await room.registerTextStreamHandler(c.topic, textHandler);
    return {};
  },
  async unregister(c) {
    if (c.kind === "byte") await room.unregisterByteStreamHandler(c.topic);
    else await room.unregisterTextStreamHandler(c.topic);
    return {};
  },
  async send_text(c) {
    const text = c.big_text ? bigText(c.big_text) : c.text;
    let progressCalls = 0;
    let lastProgress = null;
    let reported = -1;
    const info = await room.localParticipant.sendText(text, {
      topic: c.topic,
      destinationIdentities: c.destinations,
      attributes: c.attributes,
      onProgress: (p) => {
        progressCalls += 1;
        lastProgress = p;
        if (c.progress_events && Math.floor(p * 100) > reported) {
          reported = Math.floor(p * 100);
          out({
            ev: "progress",
            id: c.id,
            progress: p,
            buffered: lastBuffered,
            max_buffered: maxBuffered,
          });
        }
      },
    });
    return {
      stream_id: info.id,
      sha256: sha256(text),
      length: text.length,
      bytes: Buffer.byteLength(text),
      progress_calls: progressCalls,
      last_progress: lastProgress,
      max_buffered: maxBuffered,
    };
  },
  async open_stream(c) {
    const w = await room.localParticipant.streamText({
      topic: c.topic,
      destinationIdentities: c.destinations,
      attributes: c.attributes,
    });
    writers.set(w.info.id, w);
    return { stream_id: w.info.id };
  },
  async write(c) {
    await writers.get(c.stream_id).write(c.text);
    return {};
  },
  async close(c) {
    await writers.get(c.stream_id).close(c.reason ?? "", c.attributes);
    writers.delete(c.stream_id);
    return {};
  },
  async send_file(c) {
    // a File backed by the file on disk (read a block at a time), or the bytes in memory
    const file = c.as_bytes
      ? new Uint8Array(readFileSync(c.path))
      : new File([await openAsBlob(c.path)], basename(c.path), {
          type: c.blob_type ?? "",
        });
    let progressCalls = 0;
    let lastProgress = null;
    const info = await room.localParticipant.sendFile(file, {
      topic: c.topic,
      name: c.name,
      mimeType: c.mime_type,
      destinationIdentities: c.destinations,
      onProgress: (p) => {
        progressCalls += 1;
        lastProgress = p;
      },
    });
    return {
      stream_id: info.id,
      name: info.name,
      size: info.size,
      mime_type: info.mimeType,
      progress_calls: progressCalls,
      last_progress: lastProgress,
    };
  },
  async publish(c) {
    const payload =
      c.payload_b64 !== undefined
        ? new Uint8Array(Buffer.from(c.payload_b64, "base64"))
        : c.payload;
    await room.localParticipant.publishData(payload, {
      topic: c.topic,
      destinationIdentities: c.destinations,
      reliable: c.reliable,
    });
    return {};
  },
  async rpc_register(c) {
    room.localParticipant.registerRpcMethod(c.method, async (data) => {
      out({
        ev: "rpc_called",
        method: c.method,
        caller: data.callerIdentity,
        payload: data.payload,
        timeout: data.responseTimeout,
      });
      if (c.behaviour === "error")
        throw new rs.RpcError(c.code, c.message, c.data);
      if (c.behaviour === "throw") throw new Error("a bug in the handler");
      if (c.behaviour === "slow") await new Promise((r) => setTimeout(r, c.ms));
      return `${data.callerIdentity} said ${data.payload}`;
    });
    return {};
  },
  async perform_rpc(c) {
    const payload = await room.localParticipant.performRpc({
      destinationIdentity: c.destination,
      method: c.method,
      payload: c.payload,
      responseTimeout: c.timeout_ms,
    });
    return { payload };
  },
  async set_attributes(c) {
    await room.localParticipant.setAttributes(c.attributes);
    return { attributes: room.localParticipant.attributes };
  },
  async set_metadata(c) {
    await room.localParticipant.setMetadata(c.metadata);
    return {};
  },
  async set_name(c) {
    await room.localParticipant.setName(c.name);
    return {};
  },
  async participants() {
    const all = {};
    for (const [id, p] of room.remoteParticipants)
      all[id] = {
        name: p.name,
        metadata: p.metadata,
        attributes: p.attributes,
        sid: p.sid,
        kind: p.kind,
      };
    const lp = room.localParticipant;
    return {
      remote: all,
      local: {
        identity: lp.identity,
        name: lp.name,
        metadata: lp.metadata,
        attributes: lp.attributes,
        sid: lp.sid,
        permissions: lp.permissions,
      },
      room_sid: await room.getSid(),
    };
  },
  async state() {
    return {
      state: room.state,
      remote: [...room.remoteParticipants.keys()].sort(),
      identity: room.localParticipant.identity,
    };
  },
  async disconnect() {
    await room.disconnect();
    return { state: room.state };
  },
  async exit(c) {
    process.exit(c.code ?? 0);
  },
};

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  const c = JSON.parse(line);
  const fn = commands[c.cmd];
  if (!fn)
    return out({
      ev: "result",
      id: c.id,
      ok: false,
      error: { name: "UnknownCommand", code: "", message: c.cmd },
    });
  fn(c).then(
    (value) => out({ ev: "result", id: c.id, ok: true, value }),
    (e) => out({ ev: "result", id: c.id, ok: false, error: errorOf(e) }),
  );
});
rl.on("close", async () => {
  await room?.disconnect();
  process.exit(0);
});
out({ ev: "ready", version: rs.version });
