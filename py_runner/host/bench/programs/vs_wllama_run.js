// Defines window.__vsRun(engine, prompt): one generate by py_runner's bridge or by wllama, and llama.cpp's
// own timings of its prompt and generated tokens.
() => {
  window.__vsRun = async (engine, prompt) => {
    const { bridge, wllama, options } = window.__vs;
    if (engine === "py_runner") {
      const r = await bridge.request("generate", { ...options, prompt }, { onToken: () => {} });
      return { prompt_tokens: r.prompt_tokens_evaluated, tokens: r.tokens.length,
               prompt_tok_s: (r.prompt_tokens_evaluated * 1000) / r.timings.prompt_ms,
               gen_tok_s: (r.tokens.length * 1000) / r.timings.gen_ms };
    }
    const r = await wllama.createCompletion({ prompt, max_tokens: options.n_predict, temperature: 0, seed: 0,
                                              ignore_eos: true });
    const t = r.timings;
    return { prompt_tokens: t.prompt_n, tokens: t.predicted_n,
             prompt_tok_s: t.prompt_per_second, gen_tok_s: t.predicted_per_second };
  };
}
