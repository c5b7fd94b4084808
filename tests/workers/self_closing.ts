// A Pool worker that ends itself for the message "quit": self.close() on Deno (no event reaches
// the parent); Bun workers have no self.close, their way is process.exit() (a close event).
import process from "node:process";
import { serveModel } from "../../mod.ts";

serveModel((model, message) => {
  if (message === "quit") {
    const self = (globalThis as unknown as { self?: { close?: () => void } }).self;
    if (typeof self?.close === "function") self.close();
    else process.exit(0);
    return new Promise(() => {});
  }
  return Array.from(model.run(new Float32Array([1, 2, 3, 4]))[0].data as Float32Array);
});
