// What the pages (page.js, discover.js) share: building elements (every value set as text or an attribute,
// never parsed as HTML) and calling the API.
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

  async call(method, url, body, token) {
    const headers = {Accept: "application/json"};
    if (token) headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch(url, {method, body, headers, credentials: "same-origin", cache: "no-store"});
    } catch (error) {
      return {ok: false, status: 0, data: null, problem: "the server could not be reached (" + error.message + ")"};
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    const problem = response.ok ? null : window.attribDom.problem(response, data);
    return {ok: response.ok, status: response.status, data, problem};
  },

  problem(response, data) {
    const detail = data && data.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => (Array.isArray(d.loc) ? d.loc.join(".") + ": " : "") + (d.msg || "")).join("; ");
    }
    return `the server answered ${response.status} ${response.statusText}`.trim();
  },
});
