// syncgate console: a little progressive enhancement. Every form also works without it.
"use strict";

(function () {
  const NO_VALUE = new Set(["is_known", "is_unknown"]);
  const LISTS = new Set(["in", "not_in"]);
  const COMPARISONS = new Set(["gt", "gte", "lt", "lte"]);
  // The same numbers the server's builder reads back as numbers (syncgate/console/builder.py).
  const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/;
  const HINTS = {
    in: "a, b, c",
    not_in: "a, b, c",
    gt: "number or date (2026-01-31)",
    gte: "number or date (2026-01-31)",
    lt: "number or date (2026-01-31)",
    lte: "number or date (2026-01-31)",
  };

  // JSON with object keys sorted, to compare criteria however they were typed.
  function canonical(value) {
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    if (value && typeof value === "object") {
      return "{" + Object.keys(value).sort()
        .map((key) => JSON.stringify(key) + ":" + canonical(value[key])).join(",") + "}";
    }
    return JSON.stringify(value);
  }

  function initSegmentForm(form) {
    const builder = form.querySelector("[data-builder]");
    const groups = builder.querySelector("[data-groups]");
    const groupTemplate = builder.querySelector("[data-group-template]");
    const rowTemplate = builder.querySelector("[data-row-template]");
    const hidden = form.querySelector("[data-filter-field]");
    const textarea = form.querySelector("[data-filter-json]");
    const details = form.querySelector("[data-json-details]");
    const useJson = form.querySelector("[data-use-json]");
    const mirrorHelp = form.querySelector("[data-json-mirror-help]");
    const activeOnly = form.querySelector("[data-active-only]");
    const save = form.querySelector("[data-save-button]");
    const stale = form.querySelector("[data-review-stale]");
    let mode = form.dataset.mode;

    function isActive() {
      const checked = form.querySelector("[data-segment-type]:checked");
      return !checked || checked.value === "active";
    }

    function operand(op, text) {
      const trimmed = text.trim();
      if (LISTS.has(op)) return trimmed.split(",").map((s) => s.trim()).filter(Boolean);
      if (COMPARISONS.has(op) && NUMBER.test(trimmed)) return Number(trimmed);
      return trimmed;
    }

    function serialise() {
      const parts = [];
      for (const group of groups.querySelectorAll(":scope > [data-group]")) {
        const conditions = [];
        for (const row of group.querySelectorAll("[data-row]")) {
          const property = row.querySelector("[data-property]").value.trim();
          if (!property) continue;
          const op = row.querySelector("[data-operator]").value;
          const condition = { property: property, operator: op };
          if (!NO_VALUE.has(op)) condition.value = operand(op, row.querySelector("[data-value]").value);
          conditions.push(condition);
        }
        if (!conditions.length) continue;
        const combinator = group.querySelector("[data-combinator]").value;
        parts.push(conditions.length === 1 ? conditions[0] : { [combinator]: conditions });
      }
      if (!parts.length) return null;
      const top = builder.querySelector("[data-top-combinator]").value;
      return parts.length === 1 ? parts[0] : { [top]: parts };
    }

    function current() {
      if (mode === "builder") return canonical(serialise());
      try {
        return canonical(JSON.parse(textarea.value));
      } catch (error) {
        return textarea.value;
      }
    }

    function refresh() {
      const top = builder.querySelector("[data-top-combinator]").value === "any" ? "OR" : "AND";
      groups.querySelectorAll(":scope > [data-group]").forEach((group, index) => {
        group.querySelector("[data-group-number]").textContent = String(index + 1);
        group.querySelector("[data-group-joiner]").textContent = top;
        const joiner = group.querySelector("[data-combinator]").value === "any" ? "OR" : "AND";
        group.querySelectorAll("[data-row]").forEach((row, rowIndex) => {
          row.querySelector("[data-joiner]").textContent = joiner;
          const op = row.querySelector("[data-operator]").value;
          const value = row.querySelector("[data-value]");
          value.disabled = NO_VALUE.has(op);
          value.placeholder = NO_VALUE.has(op) ? "(no value)" : HINTS[op] || "";
          row.querySelector("[data-remove-row]").setAttribute(
            "aria-label", "Remove condition " + (rowIndex + 1) + " of group " + (index + 1));
        });
        group.querySelector("[data-remove-group]").setAttribute("aria-label", "Remove group " + (index + 1));
        group.querySelector("[data-add-row]").setAttribute("aria-label", "Add condition to group " + (index + 1));
      });
    }

    let baseline = form.dataset.reviewed === "true" ? null : undefined;

    function updateStale() {
      if (!isActive()) {
        save.disabled = false;
        stale.hidden = true;
        return;
      }
      const fresh = typeof baseline === "string" && current() === baseline;
      save.disabled = !fresh;
      stale.hidden = fresh;
      stale.textContent = typeof baseline === "string"
        ? "The criteria changed since the review: review them again before saving."
        : "Review the criteria to see how many contacts match before saving.";
    }

    function sync() {
      if (mode === "builder") {
        const filter = serialise();
        textarea.value = filter === null ? "" : JSON.stringify(filter, null, 2);
        hidden.value = filter === null ? "" : JSON.stringify(filter);
      } else {
        hidden.value = "";
      }
      updateStale();
    }

    function clone(template) {
      return template.content.firstElementChild.cloneNode(true);
    }

    function setMode(next) {
      mode = next;
      const json = mode === "json";
      builder.hidden = json;
      textarea.readOnly = !json;
      mirrorHelp.hidden = json;
      useJson.hidden = json;
      if (json) details.open = true;
    }

    builder.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      if (button.matches("[data-add-row]")) {
        const row = clone(rowTemplate);
        button.closest("[data-group]").querySelector("[data-rows]").append(row);
        refresh();
        row.querySelector("[data-property]").focus();
      } else if (button.matches("[data-remove-row]")) {
        const group = button.closest("[data-group]");
        button.closest("[data-row]").remove();
        if (!group.querySelector("[data-row]")) group.querySelector("[data-rows]").append(clone(rowTemplate));
        refresh();
        group.querySelector("[data-add-row]").focus();
      } else if (button.matches("[data-add-group]")) {
        const group = clone(groupTemplate);
        groups.append(group);
        refresh();
        group.querySelector("[data-property]").focus();
      } else if (button.matches("[data-remove-group]")) {
        button.closest("[data-group]").remove();
        if (!groups.querySelector("[data-group]")) groups.append(clone(groupTemplate));
        refresh();
        builder.querySelector("[data-add-group]").focus();
      } else {
        return;
      }
      sync();
    });
    builder.addEventListener("input", sync);
    builder.addEventListener("change", () => {
      refresh();
      sync();
    });
    textarea.addEventListener("input", sync);
    useJson.addEventListener("click", () => {
      setMode("json");
      sync();
      textarea.focus();
    });
    form.querySelectorAll("[data-segment-type]").forEach((radio) => {
      radio.addEventListener("change", () => {
        activeOnly.hidden = !isActive();
        updateStale();
      });
    });
    form.addEventListener("submit", sync);

    details.open = mode !== "builder";
    setMode(mode);
    activeOnly.hidden = !isActive();
    refresh();
    sync();
    if (baseline === null) baseline = current();
    updateStale();
  }

  function initAutoApply(select) {
    // Choosing with the mouse applies at once; with the keyboard, arrows only move the choice
    // and Enter (or the Apply button) applies it.
    const form = select.form;
    let keyboard = false;
    select.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        form.requestSubmit();
      } else if (event.key !== "Tab" && event.key !== "Shift") {
        keyboard = true;
      }
    });
    select.addEventListener("pointerdown", () => {
      keyboard = false;
    });
    select.addEventListener("change", () => {
      if (!keyboard) form.requestSubmit();
    });
  }

  function initProgress(section) {
    const bar = section.querySelector("progress");
    const text = section.querySelector("[data-job-text]");
    async function poll() {
      try {
        const response = await fetch(section.dataset.jobProgress, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          cache: "no-store",
        });
        if (response.ok) {
          const progress = await response.json();
          bar.value = progress.percent;
          bar.textContent = progress.percent + "%";
          if (text.textContent !== progress.text) text.textContent = progress.text;
          if (progress.finished) {
            section.dataset.finished = "true";
            return;
          }
        }
      } catch (error) {
        // Network hiccup: try again below.
      }
      window.setTimeout(poll, 500);
    }
    if (section.dataset.finished !== "true") window.setTimeout(poll, 250);
  }

  function initMappings(form) {
    const add = form.querySelector("[data-add-mapping]");
    const body = form.querySelector("[data-mapping-rows]");
    const count = form.querySelector("[data-row-count]");
    add.hidden = false;
    add.addEventListener("click", () => {
      const rows = body.querySelectorAll("[data-mapping-row]");
      const index = rows.length;
      const row = rows[rows.length - 1].cloneNode(true);
      row.querySelectorAll("[id], [name], [for]").forEach((element) => {
        for (const attribute of ["id", "name", "for"]) {
          const value = element.getAttribute(attribute);
          if (value) element.setAttribute(attribute, value.replace(/^m\d+/, "m" + index));
        }
      });
      row.querySelectorAll("label").forEach((label) => {
        label.textContent = label.textContent.replace(/\d+/, String(index + 1));
      });
      row.querySelector("td").textContent = String(index + 1);
      row.querySelectorAll("input[type=text]").forEach((input) => {
        input.value = "";
      });
      row.querySelector("input[type=checkbox]").checked = false;
      row.querySelector("select").selectedIndex = 0;
      body.append(row);
      count.value = String(index + 1);
      row.querySelector("input").focus();
    });
  }

  function init() {
    document.querySelectorAll("[data-segment-form]").forEach(initSegmentForm);
    document.querySelectorAll("[data-auto-apply]").forEach(initAutoApply);
    document.querySelectorAll("[data-job-progress]").forEach(initProgress);
    document.querySelectorAll("[data-mappings-form]").forEach(initMappings);
    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    const focus = document.querySelector("[data-focus-on-load]");
    if (focus) focus.focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
