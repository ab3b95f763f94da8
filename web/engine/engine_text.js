// py_runner engine text requests: generate, embed, logits, the tokenizer and the chat templates, each a handler of
// web/engine/worker.js's table (one per request of protocol.js). A plain script the worker loads with importScripts; it
// shares the worker's global scope (Module, session, P, GLUE, DEFAULTS, PyRunnerError) and engine_calls.js's helpers.
"use strict";

// --- generate: tokenize, evaluate the prompt, stream tokens --------------------------------------------------
async function generate(msg, state, reply) {
  requireSession();
  if (msg.n_threads && threadsFor(msg.n_threads) !== sessionThreads) {
    sessionThreads = threadsFor(msg.n_threads);
    Module._pr_set_threads(session, sessionThreads);
  }
  // a list is the prompt's tokens as they are (llama-cpp-python's token-list prompts)
  const promptTokens = Array.isArray(msg.prompt) ? Int32Array.from(msg.prompt) : tokenize(msg.prompt, true, true);
  configureSampler(msg);

  const t0 = performance.now();
  const tokensPtr = Module._malloc(promptTokens.length * 4);
  Module.HEAP32.set(promptTokens, tokensPtr >>> 2);
  const rc = Module._pr_eval_prompt(session, tokensPtr, promptTokens.length);
  Module._free(tokensPtr);
  if (rc !== 0) throw glueError("eval", rc);
  const t1 = performance.now();

  const tokens = [];
  let finishReason = "length";
  let eogToken = -1; // the end-of-generation token that ended it (not among `tokens`)
  const nPredict = msg.n_predict ?? DEFAULTS.n_predict;
  while (tokens.length < nPredict) {
    if (state.aborted) {
      finishReason = "aborted";
      break;
    }
    const token = Module._pr_next_token(session);
    if (token === GLUE.PR_ERR_CONTEXT_FULL) {
      finishReason = "context_full";
      break;
    }
    if (token < 0) throw glueError("engine", token);
    if (Module._pr_is_eog(session, token)) {
      finishReason = "eos";
      eogToken = token;
      break;
    }
    tokens.push(token);
    const piece = tokenPiece(token);
    reply({ type: "token", token, piece }, [piece.buffer]);
    await nextTask(); // lets an "abort" message in between two tokens
  }
  const t2 = performance.now();
  const reused = Module._pr_reused_tokens(session);
  return {
    tokens,
    prompt_tokens: promptTokens.length,
    prompt_tokens_reused: reused, // already in the KV cache from the previous call: not evaluated again
    prompt_tokens_evaluated: promptTokens.length - reused,
    finish_reason: finishReason,
    eog_token: eogToken,
    threads: sessionThreads,
    timings: { prompt_ms: t1 - t0, gen_ms: t2 - t1 },
  };
}

// After item i of total is done: progress {stage: "embedding", loaded, total} at most every PROGRESS_INTERVAL_MS
// (and for the last one), then a macrotask, which lets an "abort" message in between two items.
function itemProgress(reply, total) {
  let lastProgress = 0;
  return async (i) => {
    const now = performance.now();
    if (i + 1 === total || now - lastProgress >= PROGRESS_INTERVAL_MS) {
      lastProgress = now;
      reply({ type: "progress", stage: "embedding", loaded: i + 1, total });
    }
    if (total > 1) await nextTask();
  };
}

// --- embed: one pooled vector per text -----------------------------------------------------------------------
// Replies progress {stage: "embedding", loaded: texts done, total}; resolves with {embeddings: Float32Array of
// texts x n_embd (one transfer, no per-text copies), n_embd, n_tokens: [per text]}.
async function embed(msg, state, reply) {
  requireSession();
  const texts = Array.from(msg.texts);
  const nEmbd = Module._pr_n_embd(session);
  const limit = JSON.parse(Module.UTF8ToString(Module._pr_metadata_json(session))).n_batch; // one text per batch
  const out = new Float32Array(texts.length * nEmbd);
  const outPtr = Module._malloc(nEmbd * 4);
  const nTokens = [];
  const done = itemProgress(reply, texts.length);
  try {
    for (let i = 0; i < texts.length; i++) {
      if (state.aborted) throw new PyRunnerError("EmbeddingAbortedError", `embedding was aborted after ${i} of ${texts.length} texts`);
      let tokens = tokenize(String(texts[i]), true, false);
      if (msg.truncate && tokens.length > limit) tokens = tokens.subarray(0, limit);
      const tokensPtr = Module._malloc(Math.max(1, tokens.length) * 4);
      Module.HEAP32.set(tokens, tokensPtr >>> 2);
      const n = Module._pr_embed(session, tokensPtr, tokens.length, msg.normalize === false ? 0 : 1, outPtr, nEmbd);
      Module._free(tokensPtr);
      if (n < 0) throw glueError("embed", n, `text ${i}: `);
      out.set(new Float32Array(Module.HEAPU8.buffer, outPtr, nEmbd), i * nEmbd);
      nTokens.push(tokens.length);
      await done(i);
    }
  } finally {
    Module._free(outPtr);
  }
  return { embeddings: out, n_embd: nEmbd, n_tokens: nTokens };
}

// --- rerank: one relevance score per document --------------------------------------------------------------
// Each (query, document) pair is formatted and scored by the glue (pr_rerank: as llama-server's /v1/rerank does).
// Replies progress {stage: "embedding", loaded: documents done, total}; resolves with {scores: [the classifier's
// first output per document], n_tokens: [per pair]}.
async function rerank(msg, state, reply) {
  requireSession();
  const documents = Array.from(msg.documents);
  const query = allocString(String(msg.query));
  const outPtr = Module._malloc(4);
  const nTokensPtr = Module._malloc(4);
  const scores = [];
  const nTokens = [];
  const done = itemProgress(reply, documents.length);
  try {
    for (let i = 0; i < documents.length; i++) {
      if (state.aborted) throw new PyRunnerError("EmbeddingAbortedError", `reranking was aborted after ${i} of ${documents.length} documents`);
      const documentPtr = allocString(String(documents[i]));
      const n = Module._pr_rerank(session, query, documentPtr, outPtr, 1, nTokensPtr);
      Module._free(documentPtr);
      if (n < 0) throw glueError("rerank", n, `document ${i}: `);
      scores.push(new Float32Array(Module.HEAPU8.buffer, outPtr, 1)[0]);
      nTokens.push(Module.HEAP32[nTokensPtr >>> 2]);
      await done(i);
    }
  } finally {
    Module._free(query);
    Module._free(outPtr);
    Module._free(nTokensPtr);
  }
  return { scores, n_tokens: nTokens };
}

// --- logits: teacher-forced, for parity with native llama.cpp, perplexity and logprobs ------------------------
// The prompt is tokenized as generate does; then row i holds the raw logits that predict tokens[i] (after the prompt
// and tokens[0..i-1]), each computed by the same one-token decode as generation (the KV cache keeps the prefix).
// Resolves with {n_vocab, rows, logits: Float32Array (rows x n_vocab), one transfer}.
async function logits(msg, state) {
  requireSession();
  const prompt = tokenize(msg.prompt, true, true);
  const tokens = Int32Array.from(msg.tokens);
  const sequence = new Int32Array(prompt.length + tokens.length);
  sequence.set(prompt);
  sequence.set(tokens, prompt.length);
  const seqPtr = Module._malloc(Math.max(1, sequence.length) * 4);
  const nVocabPtr = Module._malloc(4);
  let out = null;
  try {
    Module.HEAP32.set(sequence, seqPtr >>> 2);
    for (let i = 0; i < tokens.length; i++) {
      if (state.aborted) throw new PyRunnerError("AbortError", `logits were aborted after ${i} of ${tokens.length} rows`);
      const rc = Module._pr_eval_prompt(session, seqPtr, prompt.length + i);
      if (rc !== 0) throw glueError("eval", rc);
      const ptr = Module._pr_logits(session, nVocabPtr);
      const nVocab = Module.HEAP32[nVocabPtr >>> 2];
      if (!ptr) throw glueError("engine", 0);
      out = out || new Float32Array(tokens.length * nVocab);
      out.set(new Float32Array(Module.HEAPU8.buffer, ptr, nVocab), i * nVocab);
    }
  } finally {
    Module._free(seqPtr);
    Module._free(nVocabPtr);
  }
  const nVocab = out ? out.length / tokens.length : 0;
  return { n_vocab: nVocab, rows: tokens.length, logits: out || new Float32Array(0) };
}

// --- eval: llama-cpp-python's Llama.eval ------------------------------------------------------------------------
// The token sequence into the KV cache, keeping the longest prefix it already holds (as a prompt's). Logits: with
// rows_from, a row for each position from rows_from on, the logits after it, each from a one-token decode after the
// positions before it (llama-cpp-python's logits_all=True); without, only the last position's, after one batch
// decode of what the cache did not hold. Resolves with {n_vocab, rows, logits (rows x n_vocab), reused}.
async function evalTokens(msg, state) {
  requireSession();
  const sequence = Int32Array.from(msg.tokens);
  const n = sequence.length;
  const ends = msg.rows_from == null ? [n] : [];
  for (let end = Math.max(0, msg.rows_from ?? n) + 1; end <= n; end++) ends.push(end);
  const seqPtr = Module._malloc(Math.max(1, n) * 4);
  const nVocabPtr = Module._malloc(4);
  let out = null;
  let reused = 0;
  try {
    Module.HEAP32.set(sequence, seqPtr >>> 2);
    for (const [i, end] of ends.entries()) {
      if (state.aborted) throw new PyRunnerError("AbortError", `eval was aborted after ${i} of ${ends.length} rows`);
      const rc = Module._pr_eval_prompt(session, seqPtr, end);
      if (rc !== 0) throw glueError("eval", rc);
      if (i === 0) reused = Module._pr_reused_tokens(session);
      const ptr = Module._pr_logits(session, nVocabPtr);
      const nVocab = Module.HEAP32[nVocabPtr >>> 2];
      if (!ptr) throw glueError("engine", 0);
      out = out || new Float32Array(ends.length * nVocab);
      out.set(new Float32Array(Module.HEAPU8.buffer, ptr, nVocab), i * nVocab);
      if (ends.length > 1) await nextTask(); // lets an "abort" message in between two rows
    }
  } finally {
    Module._free(seqPtr);
    Module._free(nVocabPtr);
  }
  const rows = out ? ends.length : 0;
  return { n_vocab: rows ? out.length / rows : 0, rows, logits: out || new Float32Array(0), reused };
}

// The sampler chain for one generate request (glue: pr_sampler_configure). ignore_eos bans every end-of-generation
// token with a -inf logit bias, as llama.cpp's own tools do.
function configureSampler(msg) {
  const bias = new Map((msg.logit_bias || []).map(([token, value]) => [token, value]));
  if (msg.ignore_eos) for (const token of eogTokens()) bias.set(token, -Infinity);
  const n = bias.size;
  const tokensPtr = Module._malloc(Math.max(1, n) * 4);
  const valuesPtr = Module._malloc(Math.max(1, n) * 4);
  const values = new Float32Array(Module.HEAPU8.buffer, valuesPtr, n); // HEAPU8 is exported by every Emscripten
  let i = 0;
  for (const [token, value] of bias) {
    Module.HEAP32[(tokensPtr >>> 2) + i] = token;
    values[i] = value;
    i += 1;
  }
  // llama.cpp's grammar parser takes a C string: a NUL would end the grammar early, silently.
  if (msg.grammar && msg.grammar.includes("\0")) throw new PyRunnerError("InvalidParameterError", "grammar: holds a NUL character");
  const grammarPtr = msg.grammar ? allocString(msg.grammar) : 0;
  // llama.cpp's chat-layer triggers make the grammar lazy: enforced from the first trigger in the output
  const triggersPtr = msg.grammar && msg.grammar_triggers ? allocString(JSON.stringify(msg.grammar_triggers)) : 0;
  // a chat grammar enforced from the start takes what the template already wrote of the reply as accepted
  const prefillPtr = msg.grammar && !msg.grammar_triggers && msg.grammar_prefill ? allocString(msg.grammar_prefill) : 0;
  try {
    // protocol.js "sampler" lists the knobs in pr_sampler_configure's order (tests/unit/test_protocol.py checks it)
    const knobs = P.sampler.map((name) => msg[name] ?? DEFAULTS[name]);
    const rc = Module._pr_sampler_configure(session, ...knobs, tokensPtr, valuesPtr, n, grammarPtr, triggersPtr, prefillPtr);
    if (rc !== 0) throw glueError("sampler", rc);
  } finally {
    Module._free(tokensPtr);
    Module._free(valuesPtr);
    if (grammarPtr) Module._free(grammarPtr);
    if (triggersPtr) Module._free(triggersPtr);
    if (prefillPtr) Module._free(prefillPtr);
  }
}

let eogCache = null; // [session, token ids]
function eogTokens() {
  if (!eogCache || eogCache[0] !== session) {
    const ids = [];
    const nVocab = JSON.parse(Module.UTF8ToString(Module._pr_metadata_json(session))).n_vocab;
    for (let t = 0; t < nVocab; t++) if (Module._pr_is_eog(session, t)) ids.push(t);
    eogCache = [session, ids];
  }
  return eogCache[1];
}

// --- tokenizer and chat template -----------------------------------------------------------------------------
async function tokenizeText(msg) {
  requireSession();
  return { tokens: Array.from(tokenize(msg.text, msg.add_special !== false, Boolean(msg.parse_special))) };
}

async function detokenizeTokens(msg) {
  requireSession();
  return { bytes: detokenize(Int32Array.from(msg.tokens), msg.remove_special, msg.unparse_special) };
}

// Each token's bytes as detokenize([token]) gives them (what llama-cpp-python's logprobs show per token), in one
// request: {bytes: all pieces one after another, lengths}.
async function tokenPieces(msg) {
  requireSession();
  const pieces = Array.from(msg.tokens, (token) => detokenize(Int32Array.of(token), false, false));
  const bytes = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.length, 0));
  pieces.reduce((at, piece) => (bytes.set(piece, at), at + piece.length), 0);
  return { bytes, lengths: pieces.map((piece) => piece.length) };
}

const CHAT_FAILURES = [GLUE.PR_ERR_TEMPLATE, GLUE.PR_ERR_EXCEPTION]; // any other negative count: a size

async function chatFormat(msg) {
  requireSession();
  const strings = [];
  const alloc = (text) => {
    const ptr = allocString(text);
    strings.push(ptr);
    return ptr;
  };
  const count = msg.messages.length;
  const rolesPtr = Module._malloc(Math.max(1, count) * 4);
  const contentsPtr = Module._malloc(Math.max(1, count) * 4);
  msg.messages.forEach((m, i) => {
    Module.HEAP32[(rolesPtr >>> 2) + i] = alloc(String(m.role));
    Module.HEAP32[(contentsPtr >>> 2) + i] = alloc(String(m.content));
  });
  const templatePtr = msg.template ? alloc(msg.template) : 0;
  const total = msg.messages.reduce((sum, m) => sum + Module.lengthBytesUTF8(String(m.content)), 0);
  try {
    const call = (buf, capacity) => Module._pr_chat_format(session, templatePtr, rolesPtr, contentsPtr, count, msg.add_assistant ? 1 : 0, buf, capacity);
    return { prompt: new TextDecoder().decode(callGrowing(2 * total + 1024, 1, call, "template", CHAT_FAILURES)) };
  } finally {
    strings.forEach((ptr) => Module._free(ptr));
    Module._free(rolesPtr);
    Module._free(contentsPtr);
  }
}

// llama.cpp's chat layer (glue pr_chat_apply / pr_chat_parse): JSON strings in, a JSON string out, as {json}.
async function chatJson(call, texts) {
  requireSession();
  const strings = texts.map((text) => allocString(String(text)));
  const lengths = texts.map((text) => Module.lengthBytesUTF8(String(text))); // a NUL inside is text, not the end
  const capacity = texts.reduce((sum, text) => sum + 2 * String(text).length, 0) + 4096;
  try {
    const json = callGrowing(capacity, 1, (buf, cap) => call(buf, cap, strings, lengths), "template", CHAT_FAILURES);
    return { json: new TextDecoder().decode(json) };
  } finally {
    strings.forEach((ptr) => Module._free(ptr));
  }
}

// The requests this file answers, by their protocol.js names (web/engine/worker.js spreads them into HANDLERS).
const TEXT_HANDLERS = {
  generate,
  embed,
  rerank,
  logits,
  eval: evalTokens,
  tokenize: tokenizeText,
  detokenize: detokenizeTokens,
  token_pieces: tokenPieces,
  chat_format: chatFormat,
  chat_apply: (msg) => chatJson((buf, cap, strings) => Module._pr_chat_apply(session, strings[0], buf, cap), [msg.request]),
  chat_parse: (msg) =>
    chatJson((buf, cap, strings, lengths) => Module._pr_chat_parse(session, strings[0], strings[1], lengths[1], buf, cap), [msg.state, msg.text]),
};
