/** The acl backend under adversarial use: long gear and format lists, library layouts, views and gears. */
import assert from "node:assert/strict";
import { open } from "../mod.ts";
import { test } from "./compat.ts";
import { aclModelFile, useAclSim } from "./acl_helpers.ts";

useAclSim();

test("acl: info lists of many gears or formats end at a whole entry ('+N more'), never a cut one", () => {
  const hw: [number, number][] = Array.from({ length: 100 }, (_, i) => [100000 + i, 1]);
  using model = open(aclModelFile({
    inputs: [{ name: "x", dtype: "UINT8", dims: [1, -1, -1] }],
    outputs: [{ name: "y", dtype: "UINT8", dims: [1, -1, -1] }],
    dynamicHW: hw,
  }, "adv-gears"));
  const gears = String(model.info.gears).split(",");
  const more = gears.pop()!;
  assert.match(more, /^\+(\d+) more$/);
  assert.equal(gears.length + Number(more.match(/\d+/)![0]), 100);
  gears.forEach((g, i) => assert.equal(g, `${100000 + i}x1`, `gear ${i} is one of the model's`));
  const inputs = Array.from({ length: 40 }, (_, i) => ({ name: `in${i}`, dtype: "FLOAT" as const, format: "NC1HWC0_C04" as const, dims: [2] }));
  using wide = open(aclModelFile({ inputs, outputs: [{ name: "y", dtype: "FLOAT", dims: [2] }] }, "adv-formats"));
  const formats = String(wide.info.input_formats).split(",");
  const rest = formats.pop()!;
  assert.match(rest, /^\+\d+ more$/);
  assert.ok(formats.every((f) => f === "NC1HWC0_C04"), String(wide.info.input_formats));
  assert.equal(formats.length + Number(rest.match(/\d+/)![0]), 40);
});
