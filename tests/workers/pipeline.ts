// A pipeline Pool worker for the tests: two shared models by name, run one after the other.
import { servePipeline } from "../../mod.ts";

servePipeline(({ first, second }, message) => {
  const { values } = message as { values: number[] };
  const [a] = first.run(Float32Array.from(values));
  const [b] = second.run(a.toFloat32());
  return { out: Array.from(b.toFloat32()), names: [first.name, second.name] };
});
