// Progressive enhancement of the questionnaire page. Without it the form still works: every
// question whose enableWhen an answer on this page can change is shown, and the server drops
// answers to questions that turn out disabled (questionnaires/enablewhen.py, which this mirrors).
(function () {
  "use strict";
  var form = document.querySelector("form.questionnaire");
  if (!form) return;
  var dataElement = document.getElementById("questionnaire-data");
  var data = dataElement ? JSON.parse(dataElement.textContent) : { answers: {}, items: {} };

  var summary = document.getElementById("form-errors");
  if (summary) summary.focus();

  // --- answers on this page, as FHIR answer objects ----------------------------------------
  function normalTime(value) { return value.length === 5 ? value + ":00" : value; }

  function answersOf(linkId) {
    var info = data.items[linkId];
    var element = form.elements["q-" + linkId];
    if (!info || !element) return [];
    var raw = [];
    var group = element instanceof RadioNodeList ? element
      : (element.type === "radio" || element.type === "checkbox") ? [element] : null;
    if (group) {
      Array.prototype.forEach.call(group, function (e) { if (e.checked) raw.push(e.value); });
    } else if (element.value !== "") {
      raw.push(element.value);
    }
    var out = raw.map(function (value) {
      switch (info.type) {
        case "boolean": return { valueBoolean: value === "true" };
        case "integer":  // digits only, as the server takes them ("72,0" is not a whole number)
          var digits = String(value).replace(/\s+/g, "");
          return { valueInteger: /^[+-]?\d+$/.test(digits) ? Number(digits) : NaN };
        case "decimal": return { valueDecimal: typedNumber(value) };
        case "date": return { valueDate: value };
        case "dateTime": return { valueDateTime: value };
        case "time": return { valueTime: normalTime(value) };
        case "choice": case "open-choice":
          return info.options[value] || { valueString: value };
        default: return { valueString: value };
      }
    }).filter(function (a) {
      var v = a[Object.keys(a)[0]];
      return !(typeof v === "number" && isNaN(v));
    });
    var other = form.elements["q-" + linkId + "-other"];
    if (other && other.value.trim()) out.push({ valueString: other.value });
    return out;
  }

  // A number as typed, read as the server reads it (proplatform.forms): "72,5" and "72.5" are
  // 72.5; anything else that is not a number is NaN (and counts as no answer).
  function typedNumber(value) {
    var text = String(value).replace(/\s+/g, "");
    if (text.split(",").length === 2 && text.indexOf(".") < 0) text = text.replace(",", ".");
    return text === "" ? NaN : Number(text);
  }

  // --- the comparison rules of enablewhen.py -------------------------------------------------
  function valueOf(answer) {
    var key = Object.keys(answer).filter(function (k) { return k.indexOf("value") === 0; })[0];
    return [key || "", key ? answer[key] : null];
  }

  function comparable(kind, value) {
    if (/Coding$/.test(kind)) return { coding: true, system: (value || {}).system, code: (value || {}).code };
    if (/Boolean$/.test(kind)) return value;
    if (/(Integer|Decimal)$/.test(kind)) return typeof value === "number" ? value : parseFloat(value);
    if (/Time$/.test(kind) && typeof value === "string") return normalTime(value);
    return value;
  }

  function pair(givenKind, given, expectedKind, expected) {
    var a = comparable(givenKind, given), b = comparable(expectedKind, expected);
    var aCoding = a && a.coding, bCoding = b && b.coding;
    if (aCoding && bCoding) return [a, b];
    if (aCoding || bCoding) {
      var code = aCoding ? a.code : b.code, other = aCoding ? b : a;
      if (typeof other === "number") {
        var number = parseFloat(code);
        if (isNaN(number)) return null;
        return aCoding ? [number, other] : [other, number];
      }
      if (typeof other === "string") return aCoding ? [code, other] : [other, code];
      return null;
    }
    if ((typeof a === "boolean") !== (typeof b === "boolean")) return null;
    if ((typeof a === "number") !== (typeof b === "number")) return null;
    return [a, b];
  }

  function equal(a, b) {
    if (a && a.coding && b && b.coding) {
      return a.code === b.code && !(a.system && b.system && a.system !== b.system);
    }
    return a === b;
  }

  function compare(operator, a, b) {
    if (operator === "=" || operator === "!=") return equal(a, b);
    if (a === null || b === null || typeof a === "boolean" || (a && a.coding) || (b && b.coding)) return false;
    if (operator === ">") return a > b;
    if (operator === "<") return a < b;
    if (operator === ">=") return a >= b;
    if (operator === "<=") return a <= b;
    return false;
  }

  function holds(condition, answers) {
    if (condition.operator === "exists") return (answers.length > 0) === Boolean(condition.value);
    var matches = answers.map(function (answer) {
      var given = valueOf(answer), p = pair(given[0], given[1], condition.kind, condition.value);
      return p !== null && compare(condition.operator, p[0], p[1]);
    });
    var any = matches.some(Boolean);
    return condition.operator === "!=" ? !any : any;
  }

  // --- show and hide ------------------------------------------------------------------------
  var wrappers = Array.prototype.slice.call(form.querySelectorAll(".q-item"));

  function update() {
    var answers = {};
    Object.keys(data.answers).forEach(function (k) { answers[k] = data.answers[k]; });
    wrappers.forEach(function (w) {
      var list = answersOf(w.dataset.linkId);
      if (list.length) answers[w.dataset.linkId] = list; else delete answers[w.dataset.linkId];
    });
    // Hiding one item can hide another that depends on it: repeat until nothing changes.
    for (var round = 0; round <= wrappers.length; round++) {
      var hidden = {};
      wrappers.forEach(function (w) {
        var parent = w.parentElement.closest(".q-item");
        var on = !(parent && hidden[parent.dataset.linkId]);
        if (on && w.dataset.enableWhen) {
          var rule = JSON.parse(w.dataset.enableWhen);
          var results = rule.conditions.map(function (c) { return holds(c, answers[c.question] || []); });
          on = rule.behavior === "all" ? results.every(Boolean) : results.some(Boolean);
        }
        if (!on) hidden[w.dataset.linkId] = true;
      });
      var changed = false;
      Object.keys(hidden).forEach(function (k) { if (answers[k]) { delete answers[k]; changed = true; } });
      if (!changed) {
        wrappers.forEach(function (w) { w.hidden = Boolean(hidden[w.dataset.linkId]); });
        return;
      }
    }
  }

  // --- slider item control: a range input with its value shown -----------------------------
  function notChosen() { return document.documentElement.lang === "da" ? "Ikke valgt" : "Not chosen"; }

  Array.prototype.forEach.call(form.querySelectorAll("input[data-slider]"), function (number) {
    var range = document.createElement("input");
    range.type = "range";
    range.min = number.min; range.max = number.max; range.step = number.step || "1";
    var output = document.createElement("output");
    var box = document.createElement("div");
    box.className = "slider";
    // The range takes over the number field's id, so its <label> (and the error links) point at it;
    // the number field stays as the value that is sent.
    range.id = number.id;
    number.id = number.id + "-value";
    output.setAttribute("for", range.id);
    output.setAttribute("aria-hidden", "true");
    if (number.getAttribute("aria-describedby")) range.setAttribute("aria-describedby", number.getAttribute("aria-describedby"));
    function show() {
      var set = number.value !== "";
      box.classList.toggle("unset", !set);
      output.textContent = set ? number.value : "–";
      range.setAttribute("aria-valuetext", set ? number.value : notChosen());
    }
    function take() { number.value = range.value; show(); update(); }
    range.value = number.value !== "" ? number.value : String((Number(number.min) + Number(number.max)) / 2);
    range.addEventListener("input", take);
    range.addEventListener("change", take);
    range.addEventListener("click", take);  // a tap on the middle sets it, though the value did not change
    number.type = "hidden";
    box.appendChild(range);
    box.appendChild(output);
    number.parentNode.insertBefore(box, number);
    show();
  });

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();

  // --- the draft is saved when the page is left, not only on Next/Back ------------------------
  var dirty = false, submitting = false;
  form.addEventListener("input", function () { dirty = true; });
  form.addEventListener("change", function () { dirty = true; });
  form.addEventListener("submit", function () { submitting = true; });
  window.addEventListener("pagehide", function () {
    if (!dirty || submitting || !navigator.sendBeacon) return;
    var body = new FormData(form);
    body.set("action", "autosave");
    navigator.sendBeacon(form.dataset.autosave || window.location.pathname, body);
    dirty = false;
  });
})();
