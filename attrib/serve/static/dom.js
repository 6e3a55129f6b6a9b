// Building elements for the pages (page.js, discover.js): every value is set as text or an attribute, never
// parsed as HTML.
"use strict";

window.attribDom = Object.freeze({
  el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  signed(value) {
    return typeof value === "number" && isFinite(value) ? (value >= 0 ? "+" : "") + value.toFixed(3) : "–";
  },
});
