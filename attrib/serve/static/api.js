// The API page: every operation of /openapi.json with its parameters, its form fields and its answers, shown
// as text (works offline; the full description is /openapi.json itself).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function resolve(spec, schema) {
    let found = schema || {};
    for (let hops = 0; found.$ref && hops < 10; hops += 1) {
      const name = found.$ref.split("/").pop();
      found = (spec.components && spec.components.schemas && spec.components.schemas[name]) || {};
    }
    return found;
  }

  function typeOf(spec, schema) {
    if (schema && schema.$ref) return schema.$ref.split("/").pop();
    const found = resolve(spec, schema);
    if (found.type === "array") return `list of ${typeOf(spec, found.items)}`;
    if (Array.isArray(found.anyOf)) return found.anyOf.map((s) => typeOf(spec, s)).join(" or ");
    if (found.format === "binary" || found.contentMediaType) return "file";
    return found.type || "any";
  }

  function table(header, rows) {
    return el("table", {},
      el("thead", {}, el("tr", {}, ...header.map((h) => el("th", {scope: "col", text: h})))),
      el("tbody", {}, ...rows.map((row) => el("tr", {}, ...row.map((cell) => el("td", {text: cell}))))));
  }

  function fields(spec, operation) {
    const rows = (operation.parameters || []).map((p) => [p.name, `${p.in}${p.required ? ", required" : ""}`,
      typeOf(spec, p.schema), (p.description || resolve(spec, p.schema).description || "")]);
    const content = operation.requestBody && operation.requestBody.content ? operation.requestBody.content : {};
    for (const [mime, body] of Object.entries(content)) {
      const schema = resolve(spec, body.schema);
      const required = new Set(schema.required || []);
      for (const [name, property] of Object.entries(schema.properties || {})) {
        rows.push([name, `${mime}${required.has(name) ? ", required" : ""}`, typeOf(spec, property),
          property.description || ""]);
      }
    }
    return rows;
  }

  function operationSection(spec, method, path, operation) {
    const section = el("section", {class: "operation", "aria-label": `${method.toUpperCase()} ${path}`},
      el("h2", {}, el("span", {class: "method", text: method.toUpperCase()}), " ", el("code", {text: path})));
    if (operation.summary) section.append(el("p", {}, el("b", {text: operation.summary})));
    if (operation.description) section.append(el("p", {text: operation.description}));
    const rows = fields(spec, operation);
    if (rows.length) section.append(el("h3", {text: "Fields"}), table(["name", "where", "type", "what"], rows));
    const answers = Object.entries(operation.responses || {}).map(([status, answer]) => {
      const json = answer.content && answer.content["application/json"];
      const schema = json ? json.schema : null;
      return [status, answer.description || "", schema ? typeOf(spec, schema) : ""];
    });
    if (answers.length) section.append(el("h3", {text: "Answers"}), table(["status", "when", "body"], answers));
    return section;
  }

  async function show() {
    let spec;
    try {
      const response = await fetch("/openapi.json", {headers: {Accept: "application/json"}, cache: "no-store"});
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      spec = await response.json();
    } catch (error) {
      $("api-status").textContent = `Could not read /openapi.json: ${error.message}`;
      return;
    }
    const info = spec.info || {};
    $("api-title").textContent = `${info.title || "attrib"} ${info.version || ""} HTTP API`.trim();
    $("api-description").textContent = info.description || "";
    const sections = [];
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const [method, operation] of Object.entries(item)) {
        if (["get", "post", "put", "patch", "delete"].includes(method)) {
          sections.push(operationSection(spec, method, path, operation));
        }
      }
    }
    $("operations").replaceChildren(...sections);
    $("api-status").textContent = `${sections.length} operations. Writes need "Authorization: Bearer TOKEN".`;
  }

  show();
})();
