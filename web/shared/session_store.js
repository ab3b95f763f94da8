// py_runner session store: conversations saved by LlamaRunner.save_session (py_runner/_state.py), kept in the
// browser beside the model cache, in the same backend the model cache chose (web/shared/model_cache.js): the Origin
// Private File System with a sync access handle, else Cache Storage. A plain script web/engine/worker.js loads with
// importScripts after protocol.js, sha256.js and model_cache.js; it defines self.PyRunnerSessionStore.
//
// One entry per session name, key = protocol.js cacheKey("session:" + name):
//   OPFS:          <OPFS root>/py_runner-sessions/<key>.session
//   Cache Storage: cache "py_runner-sessions", request <origin>/py_runner-sessions/<key>
// An entry's bytes: "PRSESS1\n", the meta JSON's byte length (u32, little-endian), the meta JSON
// {format, name, saved_at, n_tokens, size, sha256, model}, the tokens (n_tokens int32, little-endian), then the
// state (size bytes). sha256 is over the tokens' bytes and the state's: read() checks it, so a damaged or cut entry
// is never restored.
self.PyRunnerSessionStore = (() => {
  const P = () => self.PyRunnerProtocol;
  const MAGIC = new TextEncoder().encode("PRSESS1\n");
  const HEAD = MAGIC.length + 4;
  const FORMAT = 1;

  const key = (name) => P().cacheKey("session:" + name);
  const fileName = async (name) => (await key(name)) + P().opfs.session_suffix;

  /** The digest sessions carry: sha256 over the tokens' bytes, then the state's. */
  function digest(tokens, state) {
    const hash = new self.PyRunnerSha256.Sha256();
    hash.update(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
    hash.update(state);
    return hash.digest();
  }

  function encode(meta, tokens, state) {
    const metaBytes = new TextEncoder().encode(JSON.stringify(meta));
    const head = new Uint8Array(HEAD);
    head.set(MAGIC);
    new DataView(head.buffer).setUint32(MAGIC.length, metaBytes.length, true);
    return [head, metaBytes, new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength), state];
  }

  /** The meta of an entry's Blob, or null when it is not one (a foreign or cut file). */
  async function readMeta(blob) {
    if (blob.size < HEAD) return null;
    const head = new Uint8Array(await blob.slice(0, HEAD).arrayBuffer());
    if (!MAGIC.every((b, i) => head[i] === b)) return null;
    const length = new DataView(head.buffer).getUint32(MAGIC.length, true);
    try {
      const meta = JSON.parse(new TextDecoder().decode(await blob.slice(HEAD, HEAD + length).arrayBuffer()));
      return meta && meta.format === FORMAT ? { meta, at: HEAD + length } : null;
    } catch (_) {
      return null;
    }
  }

  /** {meta, tokens: Int32Array, state: Uint8Array} of an entry, or a StateIntegrityError. */
  async function decode(name, blob) {
    const damaged = (why) => new (P().PyRunnerError)("StateIntegrityError", `session ${JSON.stringify(name)} is damaged (${why}); it was deleted`);
    const head = await readMeta(blob);
    if (!head) throw damaged("its header is unreadable");
    const { meta, at } = head;
    const tokensEnd = at + meta.n_tokens * 4;
    if (blob.size !== tokensEnd + meta.size) throw damaged(`${blob.size} bytes where ${tokensEnd + meta.size} were written`);
    const tokens = new Int32Array(await blob.slice(at, tokensEnd).arrayBuffer());
    const state = new Uint8Array(await blob.slice(tokensEnd).arrayBuffer());
    if (digest(tokens, state) !== meta.sha256) throw damaged("its sha256 differs from the one saved");
    return { meta, tokens, state };
  }

  function quotaError(name, err) {
    return new (P().PyRunnerError)("CacheQuotaError", `no room to store session ${JSON.stringify(name)}: ${err.message}`);
  }

  // ---- OPFS ------------------------------------------------------------------------------------------------
  async function opfsDir(create) {
    const root = await navigator.storage.getDirectory();
    try {
      return await root.getDirectoryHandle(P().opfs.sessions_dir, { create });
    } catch (err) {
      if (!create && err && err.name === "NotFoundError") return null;
      throw err;
    }
  }

  async function opfsFile(dir, file) {
    try {
      return await (await dir.getFileHandle(file)).getFile();
    } catch (err) {
      if (err && (err.name === "NotFoundError" || err.name === "TypeMismatchError")) return null;
      throw err;
    }
  }

  /** Write parts into dir/file (replacing what it held); returns its handle. A full quota is CacheQuotaError. */
  async function writeFile(dir, file, name, parts) {
    const handle = await dir.getFileHandle(file, { create: true });
    const access = await handle.createSyncAccessHandle();
    try {
      access.truncate(0);
      let at = 0;
      for (const part of parts) {
        self.PyRunnerModelCache.writeAll(access, part, at);
        at += part.byteLength;
      }
      access.flush();
    } catch (err) {
      access.close();
      await dir.removeEntry(file).catch(() => {});
      throw self.PyRunnerModelCache.isQuota(err) ? quotaError(name, err) : err;
    }
    access.close();
    return handle;
  }

  const opfs = {
    async write(name, parts) {
      const dir = await opfsDir(true);
      const file = await fileName(name);
      // Written beside the entry, then moved over it: a save cut short leaves the old session as it was. Where
      // the browser cannot move a file, the entry is written in place.
      if (typeof FileSystemFileHandle.prototype.move === "function") {
        const part = await writeFile(dir, file + ".part", name, parts);
        try {
          await dir.removeEntry(file).catch(() => {}); // not every browser's move() replaces an existing file
          await part.move(file);
          return;
        } catch (_) {
          await dir.removeEntry(file + ".part").catch(() => {});
        }
      }
      await writeFile(dir, file, name, parts);
    },
    async read(name) {
      const dir = await opfsDir(false);
      return dir && opfsFile(dir, await fileName(name));
    },
    async list() {
      const dir = await opfsDir(false);
      const blobs = [];
      if (!dir) return blobs;
      for await (const [file, handle] of dir.entries()) {
        if (handle.kind === "file" && file.endsWith(P().opfs.session_suffix)) blobs.push(await handle.getFile());
      }
      return blobs;
    },
    async remove(name) {
      const dir = await opfsDir(false);
      if (!dir) return false;
      try {
        await dir.removeEntry(await fileName(name));
        return true;
      } catch (err) {
        if (err && err.name === "NotFoundError") return false;
        throw err;
      }
    },
  };

  // ---- Cache Storage ---------------------------------------------------------------------------------------
  const requestUrl = async (name) => new URL(`${P().opfs.sessions_dir}/${await key(name)}`, self.location.origin + "/").href;
  const cacheStorage = {
    async write(name, parts) {
      const store = await caches.open(P().opfs.sessions_dir);
      const url = await requestUrl(name);
      try {
        await store.put(url, new Response(new Blob(parts), { headers: { "content-type": "application/octet-stream" } }));
      } catch (err) {
        await store.delete(url).catch(() => {});
        throw self.PyRunnerModelCache.isQuota(err) ? quotaError(name, err) : err;
      }
    },
    async read(name) {
      const response = await (await caches.open(P().opfs.sessions_dir)).match(await requestUrl(name));
      return response ? response.blob() : null;
    },
    async list() {
      const store = await caches.open(P().opfs.sessions_dir);
      const blobs = [];
      for (const request of await store.keys()) {
        const response = await store.match(request);
        if (response) blobs.push(await response.blob());
      }
      return blobs;
    },
    async remove(name) {
      return (await caches.open(P().opfs.sessions_dir)).delete(await requestUrl(name));
    },
  };

  async function backend() {
    const name = await self.PyRunnerModelCache.backend();
    if (name === "opfs") return opfs;
    if (name === "cache-storage") return cacheStorage;
    throw new (P().PyRunnerError)("StateError", "this browser offers no storage for sessions (no OPFS, no Cache Storage)");
  }

  return {
    digest,
    /** Store a session (replacing one of that name); returns its meta. */
    async save(name, model, tokens, state) {
      const meta = {
        format: FORMAT, name, saved_at: new Date().toISOString(), n_tokens: tokens.length, size: state.length,
        sha256: digest(tokens, state), model,
      };
      await (await backend()).write(name, encode(meta, tokens, state));
      return meta;
    },
    /** {meta, tokens, state} of a session, null when there is none; a damaged one is deleted (StateIntegrityError). */
    async load(name) {
      const store = await backend();
      const blob = await store.read(name);
      if (!blob) return null;
      try {
        return await decode(name, blob);
      } catch (err) {
        if (err && err.name === "StateIntegrityError") await store.remove(name).catch(() => {});
        throw err;
      }
    },
    /** Every readable session's meta, by name. */
    async list() {
      const metas = [];
      for (const blob of await (await backend()).list()) {
        const head = await readMeta(blob);
        if (head) metas.push(head.meta);
      }
      return metas.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    },
    async remove(name) {
      return (await backend()).remove(name);
    },
  };
})();
