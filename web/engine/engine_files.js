// py_runner engine files: how the engine's file system reads a model (web/engine/worker.js mounts it with WORKERFS). A
// plain script the worker loads with importScripts; it shares the worker's global scope (Module, MODEL_DIR).
"use strict";

// Emscripten's WORKERFS reads a Blob with one FileReaderSync call per read(), and each call costs milliseconds
// whatever its size (a round trip to the browser's blob store). llama.cpp reads a GGUF's metadata through stdio
// in 1 KiB pieces (SmolLM2: ~2 MB of vocabulary, ~3,800 reads) and then each tensor (~200, not in file order, but
// mostly near each other): SmolLM2 took ~2.8 s that way. Reads are served instead from aligned blocks of the file,
// each read in one call and kept in a small LRU: ~25 calls, and at most BLOCK_BYTES * BLOCKS_KEPT of transient
// memory. A read as large as a block goes straight through. Counted for the load report.
const BLOCK_BYTES = 8 << 20;
const BLOCKS_KEPT = 2;
const readStats = { calls: 0, blob_reads: 0, ms: 0, failure: null };
const EIO = 29; // Emscripten's errno for an I/O error
let keptBlocks = []; // {node, index, bytes}, most recently used last; emptied when a load ends

function installBlockReads(WORKERFS) {
  if (WORKERFS.blockReadsInstalled) return;
  WORKERFS.blockReadsInstalled = true;
  const readBlob = (node, start, end) => {
    readStats.blob_reads += 1;
    try {
      return new Uint8Array(WORKERFS.reader.readAsArrayBuffer(node.contents.slice(start, end)));
    } catch (err) {
      // A JS exception must not unwind through llama.cpp's frames: it becomes an I/O error that llama.cpp
      // reports, and the load says what the browser said (e.g. Chromium's NotReadableError for a download of
      // more than 2 GiB held in memory).
      readStats.failure = readStats.failure || `${err.name}: ${err.message}`;
      throw new Module.FS.ErrnoError(EIO);
    }
  };
  const block = (node, index) => {
    const at = keptBlocks.findIndex((b) => b.node === node && b.index === index);
    if (at >= 0) {
      const hit = keptBlocks.splice(at, 1)[0];
      keptBlocks.push(hit);
      return hit.bytes;
    }
    const bytes = readBlob(node, index * BLOCK_BYTES, (index + 1) * BLOCK_BYTES);
    keptBlocks.push({ node, index, bytes });
    if (keptBlocks.length > BLOCKS_KEPT) keptBlocks.shift();
    return bytes;
  };
  WORKERFS.stream_ops.read = (stream, buffer, offset, length, position) => {
    const t0 = performance.now();
    readStats.calls += 1;
    const node = stream.node;
    const end = Math.min(node.size, position + length);
    let n = 0;
    if (node.access) {
      try {
        n = node.access.read(buffer.subarray(offset, offset + Math.max(0, end - position)), { at: position });
        readStats.ms += performance.now() - t0;
        return n;
      } catch (_) {
        // e.g. a browser that will not read into a SharedArrayBuffer (mt): the File, as for any other file
        closeQuietly(node.access);
        node.access = null;
      }
    }
    if (end - position >= BLOCK_BYTES) {
      const bytes = readBlob(node, position, end);
      buffer.set(bytes, offset);
      n = bytes.length;
    } else {
      for (let at = position; at < end; ) {
        const index = Math.floor(at / BLOCK_BYTES);
        const bytes = block(node, index);
        const from = at - index * BLOCK_BYTES;
        const take = Math.min(end - at, bytes.length - from);
        buffer.set(bytes.subarray(from, from + take), offset + n);
        n += take;
        at += take;
      }
    }
    readStats.ms += performance.now() - t0;
    return n;
  };
}

function closeQuietly(access) {
  try {
    access.close();
  } catch (_) {
    // closed already
  }
}

function unmountModels() {
  try {
    Module.FS.unmount(MODEL_DIR);
  } catch (_) {
    // nothing was mounted
  }
}
