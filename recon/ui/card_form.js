// recon's card form (anywidget front end). See card_form.py for the why.
//
// The card number, expiry and CVC are typed into the processor's own fields
// (Stripe Elements) or into inputs that exist only in this page (Accept.js), and
// go from here straight to the processor's tokenizer. Only the token is sent to
// the kernel, as a custom message; nothing card-related is ever set on the model.

// Each processor script is loaded ONCE per page: localstripe's Stripe.js throws if
// it is evaluated twice, and real Stripe.js warns. Keyed by URL, shared by views.
const SCRIPTS = (globalThis.__reconCardScripts = globalThis.__reconCardScripts || new Map());

function loadScript(url) {
  if (!SCRIPTS.has(url)) {
    SCRIPTS.set(
      url,
      new Promise((resolve, reject) => {
        const tag = document.createElement("script");
        tag.src = url;
        tag.async = true;
        tag.dataset.reconCard = "1";
        tag.onload = () => resolve();
        tag.onerror = () => {
          SCRIPTS.delete(url);
          tag.remove();
          reject(new Error(`could not load the processor's script (${url})`));
        };
        document.head.appendChild(tag);
      }),
    );
  }
  return SCRIPTS.get(url);
}

const COUNTRIES = [
  ["US", "United States"],
  ["CA", "Canada"],
  ["GB", "United Kingdom"],
  ["MX", "Mexico"],
  ["PR", "Puerto Rico"],
];

const CSS = `
.recon-card-form { border: 1px solid var(--jp-border-color1, #ccc); border-radius: 6px;
  padding: 10px 14px; margin: 8px 0; max-width: 520px; font-size: 13px;
  background: var(--jp-layout-color1, #fff); }
.recon-card-form h4 { margin: 0 0 8px 0; }
.recon-card-form label.recon-card-field { display: flex; align-items: center; gap: 8px;
  margin: 6px 0; }
.recon-card-form label.recon-card-field > span.recon-card-label { width: 130px;
  font-weight: 600; }
.recon-card-form .recon-card-slot { flex: 1; display: flex; gap: 6px; align-items: center;
  min-height: 24px; }
.recon-card-form input, .recon-card-form select { padding: 3px 6px; font-size: 13px; }
.recon-card-form .recon-card-staging { font-size: 11px; color: #888; }
.recon-card-form .recon-card-status { margin-top: 8px; }
.recon-card-form .recon-card-status.ok { color: #1a7f37; font-weight: 600; }
.recon-card-form .recon-card-status.error { color: #b42318; font-weight: 600; }
.recon-card-form .recon-card-status.busy { color: #555; }
.recon-card-form .recon-card-test { font-size: 11px; color: #888; margin-top: 6px; }
`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

// A labelled row; the <label> wraps its control(s) so "Card Number" names the input.
function field(label, cls) {
  const slot = el("div", { class: `recon-card-slot ${cls}` });
  const row = el(
    "label",
    { class: `recon-card-field ${cls}-field` },
    el("span", { class: "recon-card-label", text: label }),
    slot,
  );
  return { row, slot };
}

// Ask the kernel for something (e.g. a SetupIntent) and wait for its answer.
function askKernel(model, type) {
  const id = `${type}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      model.off("msg:custom", onMsg);
      reject(new Error("the kernel did not answer"));
    }, 30000);
    function onMsg(msg) {
      if (!msg || msg.type !== type || msg.id !== id) return;
      clearTimeout(timer);
      model.off("msg:custom", onMsg);
      if (msg.error) reject(new Error(msg.error));
      else resolve(msg);
    }
    model.on("msg:custom", onMsg);
    model.send({ type, id });
  });
}

// ---------------------------------------------------------------------- Stripe
async function mountStripe(config, form) {
  await loadScript(config.script_url);
  if (typeof window.Stripe !== "function") throw new Error("Stripe.js did not load");
  const stripe = window.Stripe(config.publishable_key);
  const elements = stripe.elements();
  const number = field("Card Number", "recon-card-number");
  const expiry = field("Expiration", "recon-card-expiration");
  const cvc = field("CVC", "recon-card-cvc");
  const country = field("Country", "recon-card-country");
  const zip = field("Zip", "recon-card-zip");
  const countrySelect = el("select", { name: "country", autocomplete: "country" });
  for (const [code, name] of COUNTRIES) countrySelect.append(el("option", { value: code, text: name }));
  country.slot.append(countrySelect);
  form.append(number.row, expiry.row, cvc.row, country.row, zip.row);

  const card = elements.create("cardNumber");
  let split = true;
  let parts = [];
  try {
    parts = [elements.create("cardExpiry"), elements.create("cardCvc")];
  } catch (e) {
    split = false; // this Stripe.js has one combined card element (localstripe's)
  }
  let zipInput = null;
  let clear;
  if (split) {
    // Stripe Elements: each field is Stripe's own iframe; the page never sees the card.
    card.mount(number.slot);
    parts[0].mount(expiry.slot);
    parts[1].mount(cvc.slot);
    zipInput = el("input", { type: "text", name: "zip", autocomplete: "postal-code", size: "10" });
    zip.slot.append(zipInput);
    clear = () => [card, ...parts].forEach((e) => e.clear && e.clear());
  } else {
    // One element with plain inputs (number, exp_month, exp_year, cvc, postal_code):
    // place each under the seed's label. Its own listeners stay attached.
    const staging = el("div", { class: "recon-card-staging" });
    form.append(staging);
    card.mount(staging);
    const inputs = {};
    for (const input of staging.querySelectorAll("input")) {
      inputs[input.getAttribute("placeholder")] = input;
    }
    const place = (name, slot, placeholder, size) => {
      const input = inputs[name];
      if (!input) throw new Error(`Stripe.js card element has no ${name} input`);
      input.setAttribute("placeholder", placeholder);
      input.setAttribute("size", size);
      input.classList.add(`recon-card-input-${name}`);
      slot.append(input);
      return input;
    };
    place("number", number.slot, "1234 1234 1234 1234", "20");
    place("exp_month", expiry.slot, "MM", "3");
    expiry.slot.append(el("span", { text: "/" }));
    place("exp_year", expiry.slot, "YY", "3");
    place("cvc", cvc.slot, "CVC", "4");
    zipInput = place("postal_code", zip.slot, "Zip", "10");
    staging.title = "Stripe.js test stand-in";
    clear = () => {
      for (const input of Object.values(inputs)) {
        input.value = "";
        input.dispatchEvent(new Event("input", { bubbles: true }));
      }
    };
  }

  async function tokenize() {
    const billing_details = {
      address: { country: countrySelect.value, postal_code: zipInput.value.trim() },
    };
    let result = await stripe.createPaymentMethod({ type: "card", card, billing_details });
    if (result && (result.paymentMethod || result.error)) {
      if (result.error) throw new Error(result.error.message || "the card was refused");
      return result.paymentMethod.id;
    }
    // A Stripe.js without createPaymentMethod (localstripe's is a stub): confirm a
    // SetupIntent the kernel creates; its PaymentMethod is the token.
    const answer = await askKernel(form.__model, "setup_intent");
    result = await stripe.confirmCardSetup(answer.client_secret, {
      payment_method: { card, billing_details },
    });
    if (result.error) throw new Error(result.error.message || "the card was refused");
    const pm = result.setupIntent.payment_method;
    return typeof pm === "string" ? pm : pm.id;
  }
  return { tokenize, clear, split };
}

// ------------------------------------------------------------- Vantage (Accept.js)
async function mountVantage(config, form) {
  await loadScript(config.script_url);
  if (!window.Accept || typeof window.Accept.dispatchData !== "function") {
    throw new Error("Accept.js did not load");
  }
  const name = field("Name on Card", "recon-card-name");
  const number = field("Card Number", "recon-card-number");
  const expiry = field("Expiration Date", "recon-card-expiration");
  const zip = field("Billing Zip Code", "recon-card-zip");
  const inputs = {
    name: el("input", { type: "text", autocomplete: "cc-name", size: "24" }),
    number: el("input", {
      type: "text", inputmode: "numeric", autocomplete: "cc-number", size: "20",
      placeholder: "1234 1234 1234 1234",
    }),
    expiry: el("input", { type: "text", autocomplete: "cc-exp", size: "6", placeholder: "MM/YY" }),
    zip: el("input", { type: "text", autocomplete: "postal-code", size: "10" }),
  };
  name.slot.append(inputs.name);
  number.slot.append(inputs.number);
  expiry.slot.append(inputs.expiry);
  zip.slot.append(inputs.zip);
  form.append(name.row, number.row, expiry.row, zip.row);

  function tokenize() {
    const exp = inputs.expiry.value.replace(/\s+/g, "");
    const m = exp.match(/^(\d{1,2})\/?(\d{2}|\d{4})$/);
    if (!m) return Promise.reject(new Error("Expiration Date must be MM/YY"));
    const secureData = {
      authData: { clientKey: config.client_key, apiLoginID: config.api_login_id },
      cardData: {
        cardNumber: inputs.number.value.replace(/\D/g, ""),
        month: m[1].padStart(2, "0"),
        year: m[2].length === 2 ? `20${m[2]}` : m[2],
        zip: inputs.zip.value.trim(),
        fullName: inputs.name.value.trim(),
      },
    };
    return new Promise((resolve, reject) => {
      window.Accept.dispatchData(secureData, (response) => {
        const messages = (response && response.messages) || {};
        if (messages.resultCode === "Error" || !response.opaqueData) {
          const first = (messages.message || [])[0] || {};
          reject(new Error(first.text || "the card was refused"));
        } else {
          resolve(response.opaqueData.dataValue);
        }
      });
    });
  }
  const clear = () => {
    inputs.number.value = "";
    inputs.expiry.value = "";
  };
  return { tokenize, clear, split: false };
}

// ---------------------------------------------------------------------- render
async function render({ model, el: root }) {
  const config = model.get("config") || {};
  const style = el("style", { text: CSS });
  const form = el("div", { class: `recon-card-form recon-card-${config.processor}` });
  form.__model = model;
  const heading = el("h4", { class: "recon-card-heading", text: model.get("heading") });
  const status = el("div", { class: "recon-card-status", role: "status" });
  const submit = el("button", {
    type: "button",
    class: "recon-card-submit jupyter-button mod-primary",
    text: config.submit_label || "Submit",
  });
  const cancel = el("button", { type: "button", class: "recon-card-cancel jupyter-button", text: "Cancel" });
  form.append(heading);
  root.append(style, form);

  const show = () => {
    const s = model.get("status");
    status.textContent = model.get("message") || "";
    status.className = `recon-card-status ${
      s === "succeeded" ? "ok" : s === "declined" || s === "error" ? "error" : s === "charging" ? "busy" : ""
    }`;
    status.dataset.status = s;
    submit.disabled = s === "charging" || s === "succeeded";
    cancel.disabled = s === "charging" || s === "succeeded";
  };

  let mounted;
  try {
    if (config.processor === "stripe") mounted = await mountStripe(config, form);
    else if (config.processor === "vantage") mounted = await mountVantage(config, form);
    else throw new Error(`no card form for processor ${config.processor}`);
  } catch (e) {
    status.textContent = `The card form could not load: ${e.message}`;
    status.className = "recon-card-status error";
    form.append(status);
    return;
  }
  form.append(el("div", {}, submit, cancel), status);
  show();
  model.on("change:status", show);
  model.on("change:message", show);

  submit.addEventListener("click", async () => {
    submit.disabled = true;
    status.textContent = "Sending the card to the processor…";
    status.className = "recon-card-status busy";
    let token;
    try {
      token = await mounted.tokenize();
    } catch (e) {
      // Only the tokenizer's message goes to the kernel (it shows it and logs nothing).
      model.send({ type: "tokenize_error", message: String((e && e.message) || e) });
      submit.disabled = false;
      return;
    } finally {
      mounted.clear(); // the card is not kept in the page after it was sent
    }
    model.send({ type: "token", token });
  });
  cancel.addEventListener("click", () => model.send({ type: "cancel" }));

  return () => {
    model.off("change:status", show);
    model.off("change:message", show);
  };
}

export default { render };
