// One measured `bench generate` run from JavaScript alone (generate_setup.js made the bridge).
async (prompt) => {
  let streamed = 0;
  const onToken = () => { streamed += 1; };
  const r = await window.__benchBridge.request("generate", { ...window.__benchOptions, prompt }, { onToken });
  return {
    prompt_tok_s: (r.prompt_tokens_evaluated * 1000) / r.timings.prompt_ms,
    gen_tok_s: (r.tokens.length * 1000) / r.timings.gen_ms,
    tokens: streamed, threads: r.threads,
  };
}
