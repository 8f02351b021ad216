"use strict";
// Renders /openapi.json without any third-party code: operations grouped by
// tag, each with its parameters, request schema and responses.
(function () {
  var root = document.getElementById("api");
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    (kids || []).forEach(function (k) { e.append(k); });
    return e;
  }
  function resolve(doc, s) {
    if (s && s.$ref) { return resolve(doc, doc.components.schemas[s.$ref.split("/").pop()] || doc.components.headers[s.$ref.split("/").pop()]); }
    return s;
  }
  function schemaText(doc, s, depth) {
    s = resolve(doc, s) || {};
    if (depth > 4) { return "…"; }
    if (s.type === "object" && s.properties) {
      var req = s.required || [];
      var lines = Object.keys(s.properties).map(function (k) {
        return "  ".repeat(depth + 1) + k + (req.indexOf(k) >= 0 ? "" : "?") + ": " + schemaText(doc, s.properties[k], depth + 1);
      });
      return "{\n" + lines.join("\n") + "\n" + "  ".repeat(depth) + "}";
    }
    if (s.type === "array") { return "[" + schemaText(doc, s.items, depth) + "]"; }
    var t = s.const !== undefined ? JSON.stringify(s.const) : s.enum ? s.enum.map(function (v) { return JSON.stringify(v); }).join(" | ") : (s.type || "any");
    var notes = [];
    ["format", "minLength", "maxLength", "minimum", "maximum", "pattern", "default"].forEach(function (k) {
      if (s[k] !== undefined) { notes.push(k + "=" + s[k]); }
    });
    if (s.description) { notes.push(s.description); }
    return t + (notes.length ? "  (" + notes.join(", ") + ")" : "");
  }
  function operation(doc, path, method, op, shared) {
    var d = el("details", {}, [el("summary", {}, [
      el("span", { class: "m " + method }, [method.toUpperCase()]), " ", el("code", {}, [path]), " — " + (op.summary || ""),
      op.security ? el("span", { class: "lock" }, [" 🔒 bearer"]) : ""
    ])]);
    if (op.description) { d.append(el("p", {}, [op.description])); }
    var params = (shared || []).concat(op.parameters || []);
    if (params.length) {
      var t = el("table", {}, [el("tr", {}, [el("th", {}, ["parameter"]), el("th", {}, ["in"]), el("th", {}, ["schema"])])]);
      params.forEach(function (p) {
        t.append(el("tr", {}, [el("td", {}, [el("code", {}, [p.name])]), el("td", {}, [p.in]),
          el("td", {}, [schemaText(doc, p.schema, 0) + (p.description ? " — " + p.description : "")])]));
      });
      d.append(t);
    }
    if (op.requestBody) {
      var c = op.requestBody.content;
      var mt = Object.keys(c)[0];
      d.append(el("p", {}, ["Request body (", el("code", {}, [mt]), "):"]), el("pre", {}, [schemaText(doc, c[mt].schema, 0)]));
    }
    var rt = el("table", {}, [el("tr", {}, [el("th", {}, ["status"]), el("th", {}, ["meaning"]), el("th", {}, ["body"])])]);
    Object.keys(op.responses).sort().forEach(function (code) {
      var r = op.responses[code];
      var body = r.content ? Object.keys(r.content).map(function (mt) {
        var s = r.content[mt].schema || {};
        return mt + (s.$ref ? " " + s.$ref.split("/").pop() : "");
      }).join(", ") : "";
      rt.append(el("tr", {}, [el("td", {}, [code]), el("td", {}, [r.description || ""]), el("td", {}, [el("code", {}, [body])])]));
    });
    d.append(rt);
    return d;
  }
  fetch("/openapi.json").then(function (r) {
    if (!r.ok) { throw new Error("GET /openapi.json: " + r.status); }
    return r.json();
  }).then(function (doc) {
    document.title = doc.info.title + " " + doc.info.version;
    root.append(el("h1", {}, [doc.info.title + " " + doc.info.version]), el("p", {}, [doc.info.description || ""]),
      el("p", {}, ["Raw document: ", el("a", { href: "/openapi.json" }, ["/openapi.json"]), " (OpenAPI " + doc.openapi + ")"]));
    var byTag = {};
    Object.keys(doc.paths).forEach(function (path) {
      var item = doc.paths[path];
      ["get", "post", "put", "delete"].forEach(function (method) {
        var op = item[method];
        if (!op) { return; }
        var tag = (op.tags || ["other"])[0];
        (byTag[tag] = byTag[tag] || []).push(operation(doc, path, method, op, item.parameters));
      });
    });
    Object.keys(byTag).forEach(function (tag) {
      root.append(el("h2", {}, [tag]));
      byTag[tag].forEach(function (d) { root.append(d); });
    });
    var schemas = el("details", {}, [el("summary", {}, ["Schemas"])]);
    Object.keys(doc.components.schemas).sort().forEach(function (name) {
      schemas.append(el("h3", {}, [name]), el("pre", {}, [schemaText(doc, doc.components.schemas[name], 0)]));
    });
    root.append(el("h2", {}, ["schemas"]), schemas);
  }).catch(function (e) {
    root.append(el("p", { id: "err" }, ["Could not load the API description: " + e.message]));
  });
})();
