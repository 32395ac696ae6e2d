/*! Tranquillité — widget de discussion accessible (EUPL-1.2).
 *
 * Intégration (une seule balise, aucune dépendance, aucun appel à un tiers) :
 *   <script src="https://<passerelle>/static/widget.js"
 *           data-tranquillite-api="https://<passerelle>"   (facultatif : origine du script)
 *           data-tranquillite-open="true"                   (facultatif : ouvert au chargement)
 *           data-tranquillite-container="#zone"             (facultatif : affiché dans la page)
 *           data-tranquillite-poll="30"                     (facultatif : secondes entre deux
 *                                                            demandes de nouvelles, 2 à 600)
 *           defer></script>
 *
 * API : POST {api}/api/v1/chat {"sender", "text"} | {"sender", "payload"} [+ "proof"]
 *       -> {"messages": [{"text": "...", "buttons": [{"title", "payload"}]}],
 *           "tickets": [{"reference", "tracking_code"}], "challenge": {...} | null}
 *       POST {api}/api/v1/notifications {"tracking_codes": [...]}
 *       -> {"messages": [{"text", "reference"}]}   (changements de statut et réponses des
 *          services, chacun donné une fois)
 *       POST {api}/api/v1/tracking {"tracking_code"}
 *       -> {"reference", "status", "status_label", "updates": [{"at", "kind", "text"}]} | 404
 *
 * Suivi : tant que la page est visible, le widget demande régulièrement les nouvelles des
 * signalements dont il garde le code de suivi et les affiche dans la conversation. Quand le
 * citoyen revient et écrit son code de suivi, le widget affiche l'état et les réponses du
 * service pour ce signalement, puis le suit aussi.
 *
 * Preuve de travail (si la passerelle en demande une avant les signalements) : le widget
 * cherche en arrière-plan une solution au défi reçu (SHA-256 avec « difficulty » bits nuls en
 * tête, WebCrypto) et la joint à la requête suivante (« proof »). Les codes de suivi des
 * signalements envoyés sont gardés dans ce navigateur (localStorage) : ils seuls permettent de
 * suivre ces signalements.
 *
 * Sécurité : tout texte reçu est inséré avec textContent / createTextNode, jamais comme HTML ;
 * seules les URL http(s) deviennent des liens (<a rel="noopener noreferrer">). Aucun style en
 * ligne, aucun eval : compatible avec une Content-Security-Policy stricte.
 */
(function () {
  "use strict";

  if (window.TranquilliteWidget) {
    return; // déjà chargé sur cette page
  }

  var MAX_CHARS = 2000;
  var WARN_CHARS = 1800;
  var REQUEST_TIMEOUT_MS = 30000;
  var MAX_TRANSCRIPT = 200;
  var PAYLOAD_GREET = "/greet";
  var PAYLOAD_HUMAN = "/parler_humain";
  var PAYLOAD_MENU = "/aide_menu";
  var PAYLOAD_GUIDED = "/mode_guide";
  var GUIDED_PREFIX = "/guide:";
  var LANG_RE = /^[a-z]{2}$/;
  var KEY_SENDER = "tq-sender";
  var KEY_TRANSCRIPT = "tq-transcript";
  var KEY_DRAFT = "tq-draft";
  var KEY_OPEN = "tq-open";
  var KEY_LARGE = "tq-pref-large-text";
  var KEY_CONTRAST = "tq-pref-high-contrast";
  var KEY_TICKETS = "tq-tickets";
  var KEY_SEEN = "tq-seen";
  var MAX_TICKETS = 20;
  var MAX_SEEN = 300;
  var POLL_DEFAULT_S = 30;
  var POLL_MAX_MS = 10 * 60 * 1000;
  var MAX_POW_BITS = 28;
  var POW_BATCH = 256;
  var CODE_RE = /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/;
  var REFERENCE_RE = /^[0-9A-Z]{2,3}-[0-9]{4}-[0-9]{6}$/;
  var SVG_NS = "http://www.w3.org/2000/svg";

  // ---------------------------------------------------------------- configuration
  function findOwnScript() {
    if (document.currentScript && document.currentScript.src) {
      return document.currentScript;
    }
    var scripts = document.querySelectorAll("script[src]");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/widget\.js(?:[?#]|$)/.test(scripts[i].src)) {
        return scripts[i];
      }
    }
    return null;
  }

  var script = findOwnScript();
  if (!script) {
    return;
  }
  var scriptUrl = new URL(script.src, document.baseURI);

  function httpOrigin(value, fallback) {
    if (!value) {
      return fallback;
    }
    try {
      var u = new URL(value, document.baseURI);
      if (u.protocol === "http:" || u.protocol === "https:") {
        return (u.origin + u.pathname).replace(/\/+$/, "");
      }
    } catch (e) {
      /* valeur invalide : on garde la valeur par défaut */
    }
    return fallback;
  }

  var apiBase = httpOrigin(script.getAttribute("data-tranquillite-api"), scriptUrl.origin);
  var chatEndpoint = apiBase + "/api/v1/chat";
  var notificationsEndpoint = apiBase + "/api/v1/notifications";
  var trackingEndpoint = apiBase + "/api/v1/tracking";
  var pollMs = (function () {
    var v = parseFloat(script.getAttribute("data-tranquillite-poll") || "");
    return (isFinite(v) ? Math.min(600, Math.max(2, v)) : POLL_DEFAULT_S) * 1000;
  })();
  var startOpen = script.getAttribute("data-tranquillite-open") === "true";
  var containerSelector = script.getAttribute("data-tranquillite-container");

  // ---------------------------------------------------------------- stockage (jamais bloquant)
  function storage(kind) {
    try {
      var s = window[kind];
      var probe = "tq-probe";
      s.setItem(probe, "1");
      s.removeItem(probe);
      return s;
    } catch (e) {
      return null;
    }
  }
  var session = storage("sessionStorage");
  var local = storage("localStorage");

  function get(store, key) {
    try {
      return store ? store.getItem(key) : null;
    } catch (e) {
      return null;
    }
  }
  function set(store, key, value) {
    try {
      if (store) {
        store.setItem(key, value);
      }
    } catch (e) {
      /* quota ou stockage interdit : on continue sans mémoriser */
    }
  }
  function remove(store, key) {
    try {
      if (store) {
        store.removeItem(key);
      }
    } catch (e) {
      /* rien */
    }
  }

  function newSenderId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return out;
  }

  function loadSender() {
    var id = get(session, KEY_SENDER);
    if (!id || !/^[0-9a-f]{32}$/.test(id)) {
      id = newSenderId();
      set(session, KEY_SENDER, id);
    }
    return id;
  }

  function loadTranscript() {
    var raw = get(session, KEY_TRANSCRIPT);
    if (!raw) {
      return [];
    }
    try {
      var data = JSON.parse(raw);
      if (!Array.isArray(data)) {
        return [];
      }
      return data
        .filter(function (item) {
          return item && (item.who === "bot" || item.who === "user") && typeof item.text === "string";
        })
        .map(function (item) {
          var buttons = Array.isArray(item.buttons)
            ? item.buttons.filter(function (b) {
                return b && typeof b.title === "string" && typeof b.payload === "string";
              })
            : [];
          var lang = typeof item.lang === "string" && LANG_RE.test(item.lang) ? item.lang : null;
          return {
            who: item.who,
            text: item.text,
            buttons: buttons,
            done: !!item.done,
            lang: lang,
            notice: item.who === "bot" && item.notice === true,
          };
        });
    } catch (e) {
      return [];
    }
  }

  function prefFromStorage(key, mediaQuery) {
    var v = get(local, key);
    if (v === "1") {
      return true;
    }
    if (v === "0") {
      return false;
    }
    return !!(mediaQuery && window.matchMedia && window.matchMedia(mediaQuery).matches);
  }

  // ---------------------------------------------------------------- construction du DOM
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) {
          return;
        }
        if (k === "class") {
          node.className = v;
        } else if (k === "text") {
          node.textContent = v;
        } else {
          node.setAttribute(k, v === true ? "" : String(v));
        }
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) {
        return;
      }
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function icon(pathData) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "tq-icon");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", pathData);
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }
  var ICON_CHAT =
    "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm2 5v2h12V8H6zm0 4v2h8v-2H6z";
  var ICON_CLOSE =
    "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4L12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z";
  var ICON_SEND = "M3 20.5V14l9-2-9-2V3.5L22 12 3 20.5z";

  function srOnly(text) {
    return el("span", { class: "tq-sr-only", text: text });
  }

  // Texte -> nœuds : sauts de ligne en <br>, URL http(s) en liens sûrs, tout le reste en texte.
  var URL_RE = /\bhttps?:\/\/[^\s<>"'«»]+/gi;

  function safeLink(raw) {
    var u;
    try {
      u = new URL(raw);
    } catch (e) {
      return null;
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      return null;
    }
    var a = el("a", {
      class: "tq-link",
      href: u.href,
      target: "_blank",
      rel: "noopener noreferrer",
    });
    a.appendChild(document.createTextNode(raw));
    a.appendChild(srOnly(" (nouvelle fenêtre)"));
    return a;
  }

  // Références (39-2026-000123) et codes de suivi (K7QM-4XPA-9HWT) : jamais coupés en fin de ligne.
  var NOWRAP_RE = /\b(?:[0-9A-Z]{2,3}-[0-9]{4}-[0-9]{6}|[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b/g;

  function appendPlain(parent, text) {
    var last = 0;
    var m;
    NOWRAP_RE.lastIndex = 0;
    while ((m = NOWRAP_RE.exec(text)) !== null) {
      if (m.index > last) {
        parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      }
      parent.appendChild(el("span", { class: "tq-nowrap", text: m[0] }));
      last = m.index + m[0].length;
    }
    if (last < text.length) {
      parent.appendChild(document.createTextNode(text.slice(last)));
    }
  }

  function appendLine(parent, line) {
    var last = 0;
    var m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(line)) !== null) {
      var url = m[0].replace(/[.,;:!?)\]}]+$/, "");
      var start = m.index;
      if (start > last) {
        appendPlain(parent, line.slice(last, start));
      }
      parent.appendChild(safeLink(url) || document.createTextNode(url));
      last = start + url.length;
      URL_RE.lastIndex = last;
    }
    if (last < line.length) {
      appendPlain(parent, line.slice(last));
    }
  }

  function appendRichText(parent, text) {
    String(text)
      .split(/\r\n|\r|\n/)
      .forEach(function (line, i) {
        if (i > 0) {
          parent.appendChild(document.createElement("br"));
        }
        appendLine(parent, line);
      });
  }

  function charCount(text) {
    // Compte en points de code (comme len() côté Python), pas en unités UTF-16.
    return Array.from(text).length;
  }

  // ---------------------------------------------------------------- état
  var senderId = loadSender();
  var transcript = loadTranscript();
  var busy = false;
  var lastFailed = null;
  var largeText = prefFromStorage(KEY_LARGE, null);
  var highContrast = prefFromStorage(KEY_CONTRAST, "(prefers-contrast: more)");
  var container = null;
  if (containerSelector) {
    try {
      container = document.querySelector(containerSelector);
    } catch (e) {
      container = null;
    }
  }
  var inline = !!container;
  var isOpen = false;
  var counterState = "ok";

  // ---------------------------------------------------------------- interface
  var root = el("div", {
    class: "tq-root " + (inline ? "tq-mode-inline" : "tq-mode-float"),
    lang: "fr",
    dir: "ltr",
    hidden: true, // révélé quand la feuille de style est chargée (pas de « flash » sans style)
  });

  var launcher = null;
  var LAUNCHER_TEXT = "Signaler / Besoin d'aide ?";
  var launcherLabel = el("span", { class: "tq-launcher-label", text: LAUNCHER_TEXT });
  if (!inline) {
    launcher = el(
      "button",
      {
        type: "button",
        class: "tq-launcher",
        "aria-expanded": "false",
        "aria-controls": "tq-panel",
        "aria-haspopup": "dialog",
      },
      [icon(ICON_CHAT), launcherLabel]
    );
    root.appendChild(launcher);
  }

  var title = el("h2", { class: "tq-title", id: "tq-title", text: "Tranquillité" });
  var subtitle = el("p", {
    class: "tq-subtitle",
    id: "tq-subtitle",
    text: "Signaler un problème à votre commune",
  });
  var closeBtn = null;
  if (!inline) {
    closeBtn = el(
      "button",
      { type: "button", class: "tq-close", "aria-label": "Fermer la discussion" },
      [icon(ICON_CLOSE), el("span", { class: "tq-close-label", text: "Fermer", "aria-hidden": "true" })]
    );
  }
  var header = el("div", { class: "tq-header" }, [
    el("div", { class: "tq-titles" }, [title, subtitle]),
    closeBtn,
  ]);

  function toggleButton(label, id) {
    return el("button", { type: "button", class: "tq-tool", id: id, "aria-pressed": "false" }, [
      el("span", { class: "tq-check", "aria-hidden": "true", text: "✓" }),
      el("span", { text: label }),
    ]);
  }
  var largeBtn = toggleButton("Texte agrandi", "tq-large-toggle");
  var contrastBtn = toggleButton("Contraste élevé", "tq-contrast-toggle");
  var resetBtn = el("button", {
    type: "button",
    class: "tq-tool",
    id: "tq-reset",
    text: "Nouvelle conversation",
  });
  var tools = el("div", { class: "tq-tools", role: "group", "aria-label": "Affichage et conversation" }, [
    largeBtn,
    contrastBtn,
    resetBtn,
  ]);

  var confirmText = el("p", {
    class: "tq-confirm-text",
    id: "tq-confirm-text",
    text:
      "Effacer cette conversation et en commencer une nouvelle ? Ce navigateur ne suivra plus " +
      "vos signalements : gardez vos codes de suivi.",
  });
  var confirmYes = el("button", { type: "button", class: "tq-btn tq-btn--primary", text: "Oui, recommencer" });
  var confirmNo = el("button", { type: "button", class: "tq-btn", text: "Annuler" });
  var confirmBox = el(
    "div",
    { class: "tq-confirm", role: "group", "aria-labelledby": "tq-confirm-text", hidden: true },
    [confirmText, el("div", { class: "tq-confirm-actions" }, [confirmYes, confirmNo])]
  );

  var urgent = el("p", { class: "tq-urgent" }, [
    el("strong", { text: "En cas d'urgence : " }),
    el("a", { class: "tq-link", href: "tel:17", text: "17" }),
    " ou ",
    el("a", { class: "tq-link", href: "tel:112", text: "112" }),
    ", ",
    el("a", { class: "tq-link", href: "sms:114", text: "114 par SMS" }),
  ]);

  var log = el("div", {
    class: "tq-log",
    id: "tq-log",
    role: "log",
    "aria-live": "polite",
    "aria-relevant": "additions",
    "aria-label": "Conversation",
    tabindex: "0",
  });

  var typing = el("div", { class: "tq-typing", role: "status" });

  var errorText = el("p", { class: "tq-error-text" });
  var retryBtn = el("button", { type: "button", class: "tq-btn tq-btn--primary", text: "Réessayer" });
  var errorBox = el("div", { class: "tq-error", role: "alert", hidden: true }, [errorText, retryBtn]);

  var menuBtn = el("button", { type: "button", class: "tq-btn tq-quick-btn", text: "Menu" });
  var guidedBtn = el("button", {
    type: "button",
    class: "tq-btn tq-quick-btn",
    text: "Mode guidé",
    title: "Répondre avec de gros boutons, une question à la fois",
  });
  var humanBtn = el("button", { type: "button", class: "tq-btn tq-quick-btn", text: "Parler à un humain" });
  var quick = el("div", { class: "tq-quick", role: "group", "aria-label": "Actions rapides" }, [
    menuBtn,
    guidedBtn,
    humanBtn,
  ]);

  var input = el("textarea", {
    class: "tq-input",
    id: "tq-input",
    name: "message",
    rows: "1",
    autocomplete: "off",
    spellcheck: "true",
    placeholder: "Écrivez votre message…",
    "aria-describedby": "tq-hint tq-counter",
  });
  var label = el("label", { class: "tq-sr-only", for: "tq-input", text: "Votre message" });
  var sendBtn = el("button", { type: "submit", class: "tq-send" }, [
    icon(ICON_SEND),
    el("span", { text: "Envoyer" }),
  ]);
  var hint = el("p", {
    class: "tq-hint",
    id: "tq-hint",
    text: "Entrée : envoyer. Maj + Entrée : aller à la ligne.",
  });
  var counter = el("p", { class: "tq-counter", id: "tq-counter", text: "0 / " + MAX_CHARS + " caractères" });
  var form = el("form", { class: "tq-form", novalidate: true, "aria-label": "Écrire un message" }, [
    label,
    el("div", { class: "tq-compose" }, [input, sendBtn]),
    el("div", { class: "tq-form-meta" }, [hint, counter]),
  ]);

  var announcer = el("div", { class: "tq-sr-only", "aria-live": "polite", role: "status" });

  var panelAttrs = {
    class: "tq-panel",
    id: "tq-panel",
    "aria-labelledby": "tq-title",
    "aria-describedby": "tq-subtitle",
  };
  if (inline) {
    panelAttrs.role = "region";
  } else {
    panelAttrs.role = "dialog";
    panelAttrs.hidden = true;
  }
  var panel = el("div", panelAttrs, [
    header,
    tools,
    confirmBox,
    urgent,
    log,
    typing,
    errorBox,
    quick,
    form,
    announcer,
  ]);
  root.appendChild(panel);

  // ---------------------------------------------------------------- rendu des messages
  function disableChoices(node) {
    var buttons = node.querySelectorAll(".tq-choice");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = true;
    }
  }

  function renderItem(item) {
    var isBot = item.who === "bot";
    var node = el("div", {
      class: "tq-msg " + (isBot ? "tq-msg--bot" : "tq-msg--user") + (item.notice ? " tq-msg--notice" : ""),
      // Réponse dans une autre langue (allemand, anglais...) : les lecteurs d'écran la prononcent bien.
      lang: isBot && item.lang && LANG_RE.test(item.lang) ? item.lang : null,
    });
    var bubble;
    if (item.notice) {
      // Nouvelle d'un signalement (statut, réponse du service) : un intitulé visible la distingue
      // des messages de l'assistant, pas seulement la couleur.
      bubble = el("div", { class: "tq-bubble tq-bubble--notice" }, [
        el("span", { class: "tq-notice-label", lang: "fr", text: "Suivi de votre signalement" }),
        srOnly(" : "),
      ]);
    } else {
      bubble = el("div", { class: "tq-bubble" }, [srOnly(isBot ? "Tranquillité : " : "Vous : ")]);
    }
    appendRichText(bubble, item.text);
    if (item.text) {
      node.appendChild(bubble);
    }
    if (isBot && Array.isArray(item.buttons) && item.buttons.length) {
      // Mode guidé : de gros boutons, les uns sous les autres sur un téléphone.
      var guidedChoices = item.buttons.some(function (b) {
        return b.payload.indexOf(GUIDED_PREFIX) === 0;
      });
      var group = el("div", {
        class: "tq-choices" + (guidedChoices ? " tq-choices--guided" : ""),
        role: "group",
        "aria-label": "Réponses proposées",
      });
      item.buttons.forEach(function (b) {
        var btn = el("button", { type: "button", class: "tq-choice", text: b.title });
        btn.addEventListener("click", function () {
          if (btn.disabled) {
            return;
          }
          send({ payload: b.payload }, b.title, { fromChoice: true });
        });
        group.appendChild(btn);
      });
      if (item.done) {
        disableChoices(group);
      }
      node.appendChild(group);
    }
    return node;
  }

  // JSON.stringify ignore les nœuds DOM gardés en mémoire (_node).
  function transcriptReplacer(key, value) {
    return key === "_node" ? undefined : value;
  }

  function saveTranscript() {
    if (transcript.length > MAX_TRANSCRIPT) {
      transcript = transcript.slice(transcript.length - MAX_TRANSCRIPT);
    }
    set(session, KEY_TRANSCRIPT, JSON.stringify(transcript, transcriptReplacer));
  }

  function addItem(item) {
    transcript.push(item);
    saveTranscript();
    var node = renderItem(item);
    item._node = node;
    log.appendChild(node);
    return item;
  }

  function removeItem(item) {
    var i = transcript.indexOf(item);
    if (i >= 0) {
      transcript.splice(i, 1);
      saveTranscript();
    }
    if (item._node && item._node.parentNode) {
      item._node.parentNode.removeChild(item._node);
    }
  }

  function retireOldChoices() {
    var active = document.activeElement;
    var focusWasOnChoice = !!(active && active.classList && active.classList.contains("tq-choice"));
    transcript.forEach(function (item) {
      if (item.who === "bot" && item.buttons && item.buttons.length && !item.done) {
        item.done = true;
        if (item._node) {
          disableChoices(item._node);
        }
      }
    });
    saveTranscript();
    return focusWasOnChoice;
  }

  // Position d'un nœud dans la zone de conversation (en pixels depuis le haut de son contenu).
  function offsetInLog(node) {
    return node.getBoundingClientRect().top - log.getBoundingClientRect().top + log.scrollTop;
  }

  var MIN_VISIBLE_CHOICES = 3;

  /**
   * Fait défiler la conversation vers les réponses reçues : le début de la première réponse
   * en haut, sauf si une question à choix (trois réponses proposées ou plus) et ses trois
   * premiers boutons ne tiendraient plus à l'écran (petit téléphone) : on descend alors juste
   * assez pour les montrer (le début des réponses reste à portée, plus haut). Une confirmation
   * suivie de deux boutons (« Nouveau signalement »...) reste lue depuis son début : sa
   * référence d'abord.
   */
  function scrollToReplies(first, asking) {
    if (!first) {
      log.scrollTop = log.scrollHeight;
      return;
    }
    var target = offsetInLog(first) - 8;
    if (asking) {
      var choices = asking.querySelectorAll(".tq-choice");
      var shown = choices.length >= MIN_VISIBLE_CHOICES ? choices[MIN_VISIBLE_CHOICES - 1] : null;
      if (shown) {
        var bottom = offsetInLog(shown) + shown.offsetHeight + 8;
        if (bottom - target > log.clientHeight) {
          target = bottom - log.clientHeight;
        }
      }
    }
    log.scrollTop = Math.max(0, Math.min(target, log.scrollHeight));
  }

  function renderTranscript() {
    while (log.firstChild) {
      log.removeChild(log.firstChild);
    }
    transcript.forEach(function (item) {
      var node = renderItem(item);
      item._node = node;
      log.appendChild(node);
    });
    log.scrollTop = log.scrollHeight;
  }

  // ---------------------------------------------------------------- messages d'état
  function announce(text) {
    announcer.textContent = "";
    window.setTimeout(function () {
      announcer.textContent = text;
    }, 50);
  }

  function setTyping(on) {
    typing.textContent = "";
    if (on) {
      typing.appendChild(
        el("span", { class: "tq-dots", "aria-hidden": "true" }, [el("span"), el("span"), el("span")])
      );
      typing.appendChild(el("span", { text: "Tranquillité prépare une réponse…" }));
    }
    root.classList.toggle("tq-is-busy", on);
  }

  function showError(message, canRetry) {
    errorText.textContent = message;
    retryBtn.hidden = !canRetry;
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorText.textContent = "";
  }

  function describeFailure(status, data) {
    var msgs = data && Array.isArray(data.messages) ? data.messages : [];
    var fromServer = msgs
      .map(function (m) {
        return m && typeof m.text === "string" ? m.text : "";
      })
      .filter(Boolean)
      .join("\n");
    var base;
    if (status === 413 || status === 422) {
      base =
        "Votre message n'a pas pu être accepté (il est peut-être trop long). " +
        "Vous pouvez le raccourcir puis l'envoyer à nouveau.";
    } else if (status === 429) {
      base = "Vous avez envoyé beaucoup de messages d'un coup. Patientez quelques secondes puis réessayez.";
    } else if (status === 0) {
      base =
        "Impossible de joindre le service pour le moment (connexion interrompue ou trop lente). " +
        "Vérifiez votre connexion puis réessayez.";
    } else {
      base = "Le service rencontre un problème momentané. Réessayez dans un instant.";
    }
    // Un message poli fourni par la passerelle (ex. 413 « message trop long ») est préféré.
    return fromServer && status < 500 ? fromServer : base;
  }

  // ---------------------------------------------------------------- suivi des signalements
  // Codes de suivi des signalements envoyés depuis ce navigateur (secrets du citoyen).
  function knownTickets() {
    var known;
    try {
      known = JSON.parse(get(local, KEY_TICKETS) || "[]");
    } catch (e) {
      known = [];
    }
    if (!Array.isArray(known)) {
      return [];
    }
    return known.filter(function (k) {
      return (
        k &&
        typeof k.reference === "string" &&
        REFERENCE_RE.test(k.reference) &&
        typeof k.tracking_code === "string" &&
        CODE_RE.test(k.tracking_code)
      );
    });
  }

  /** Garde les codes de suivi reçus ; renvoie vrai si un nouveau signalement est suivi. */
  function rememberTickets(tickets) {
    if (!Array.isArray(tickets) || !tickets.length) {
      return false;
    }
    var known = knownTickets();
    var added = false;
    tickets.forEach(function (t) {
      if (
        t &&
        typeof t.reference === "string" &&
        REFERENCE_RE.test(t.reference) &&
        typeof t.tracking_code === "string" &&
        CODE_RE.test(t.tracking_code) &&
        !known.some(function (k) {
          return k.tracking_code === t.tracking_code;
        })
      ) {
        known.push({ reference: t.reference, tracking_code: t.tracking_code });
        added = true;
      }
    });
    set(local, KEY_TICKETS, JSON.stringify(known.slice(-MAX_TICKETS)));
    return added;
  }

  // Un code de suivi écrit dans une phrase (même lecture que reports/tracking.py) : trois
  // groupes de quatre séparés par un tiret ou une espace, chacun avec un chiffre ; O se lit 0,
  // I et L se lisent 1 ; un numéro fait seulement de chiffres n'en est pas un.
  var CODE_GROUPS_RE = /([0-9A-Za-z]{4})[- ]([0-9A-Za-z]{4})[- ]([0-9A-Za-z]{4})/g;
  var CODE_EDGE_RE = /[0-9A-Za-z-]/;
  var CROCKFORD_RE = /^[0-9A-HJKMNP-TV-Z]{4}$/;

  function findTrackingCode(text) {
    var m;
    CODE_GROUPS_RE.lastIndex = 0;
    while ((m = CODE_GROUPS_RE.exec(String(text))) !== null) {
      CODE_GROUPS_RE.lastIndex = m.index + 1; // les candidats peuvent se chevaucher
      var before = m.index > 0 ? m.input.charAt(m.index - 1) : "";
      var after = m.input.charAt(m.index + m[0].length);
      if ((before && CODE_EDGE_RE.test(before)) || (after && CODE_EDGE_RE.test(after))) {
        continue;
      }
      var raw = [m[1], m[2], m[3]];
      if (
        !raw.every(function (g) {
          return /[0-9]/.test(g);
        })
      ) {
        continue;
      }
      var groups = raw.map(function (g) {
        return g.toUpperCase().replace(/O/g, "0").replace(/[IL]/g, "1");
      });
      if (
        !groups.every(function (g) {
          return CROCKFORD_RE.test(g);
        }) ||
        /^[0-9]+$/.test(groups.join(""))
      ) {
        continue;
      }
      return groups.join("-");
    }
    return null;
  }

  // Nouvelles déjà affichées (signalement + texte), pour ne pas montrer deux fois la même.
  function seenKey(reference, text) {
    var h = 5381;
    var s = reference + "\n" + text;
    for (var i = 0; i < s.length; i++) {
      h = ((h << 5) + h + s.charCodeAt(i)) | 0;
    }
    return reference + ":" + (h >>> 0).toString(36) + ":" + s.length.toString(36);
  }

  function loadSeen() {
    try {
      var seen = JSON.parse(get(local, KEY_SEEN) || "[]");
      return Array.isArray(seen) ? seen : [];
    } catch (e) {
      return [];
    }
  }

  /** Affiche une nouvelle si elle ne l'a pas déjà été ; renvoie l'élément affiché ou null. */
  function showNotice(reference, text) {
    var seen = loadSeen();
    var key = seenKey(reference, text);
    if (seen.indexOf(key) >= 0) {
      return null;
    }
    seen.push(key);
    set(local, KEY_SEEN, JSON.stringify(seen.slice(-MAX_SEEN)));
    return addNotice(text);
  }

  function addNotice(text) {
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    var item = addItem({ who: "bot", text: text, buttons: [], notice: true });
    if (atBottom) {
      scrollToReplies(item._node, null);
    }
    if (!inline && !isOpen) {
      launcher.classList.add("tq-launcher--unread");
      launcherLabel.textContent = "Nouveau message sur votre signalement";
    }
    return item;
  }

  var pollTimer = null;
  var polling = false;
  var pollFailures = 0;

  function schedulePoll(delay) {
    if (pollTimer) {
      window.clearTimeout(pollTimer);
      pollTimer = null;
    }
    if (!knownTickets().length) {
      return;
    }
    pollTimer = window.setTimeout(pollNow, Math.max(0, delay));
  }

  // Les nouvelles des signalements suivis, tant que la page est visible (pas de CDN, pas de
  // connexion permanente : une requête de temps en temps vers la passerelle).
  function pollNow() {
    pollTimer = null;
    if (polling || document.visibilityState === "hidden") {
      return; // reprend quand la page redevient visible
    }
    var codes = knownTickets().map(function (k) {
      return k.tracking_code;
    });
    if (!codes.length) {
      return;
    }
    polling = true;
    postJson(notificationsEndpoint, { tracking_codes: codes }).then(function (result) {
      polling = false;
      var msgs = result.data && Array.isArray(result.data.messages) ? result.data.messages : null;
      if (!result.ok || !msgs) {
        pollFailures += 1;
        schedulePoll(Math.min(POLL_MAX_MS, pollMs * Math.pow(2, Math.min(pollFailures, 8))));
        return;
      }
      pollFailures = 0;
      msgs.forEach(function (m) {
        if (
          m &&
          typeof m.text === "string" &&
          m.text &&
          typeof m.reference === "string" &&
          REFERENCE_RE.test(m.reference)
        ) {
          showNotice(m.reference, m.text);
        }
      });
      schedulePoll(pollMs);
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      schedulePoll(0);
    }
  });

  /** Le citoyen revient avec son code de suivi : l'état et les réponses de ce signalement. */
  function followReport(code) {
    return postJson(trackingEndpoint, { tracking_code: code }).then(function (result) {
      var data = result.data;
      if (!result.ok || !data || typeof data.reference !== "string" || !REFERENCE_RE.test(data.reference)) {
        return false; // code inconnu : l'assistant l'a déjà dit
      }
      rememberTickets([{ reference: data.reference, tracking_code: code }]);
      var label = typeof data.status_label === "string" && data.status_label ? data.status_label : null;
      addNotice(
        "Signalement " +
          data.reference +
          (label ? " : " + label + "." : ".") +
          " Les nouvelles de ce signalement s'afficheront dans cette conversation."
      );
      (Array.isArray(data.updates) ? data.updates : []).forEach(function (u) {
        if (u && typeof u.text === "string" && u.text) {
          showNotice(data.reference, u.text);
        }
      });
      schedulePoll(pollMs);
      return true;
    });
  }

  // ---------------------------------------------------------------- preuve de travail
  function leadingZeroBits(bytes) {
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) {
        bits += 8;
        continue;
      }
      var b = bytes[i];
      while ((b & 0x80) === 0) {
        bits += 1;
        b <<= 1;
      }
      return bits;
    }
    return bits;
  }

  var proof = null; // "<défi>:<solution>", jointe à la prochaine requête
  var solving = null; // défi en cours de résolution

  function solveChallenge(challenge) {
    if (
      !challenge ||
      typeof challenge.challenge !== "string" ||
      typeof challenge.difficulty !== "number" ||
      challenge.difficulty < 1 ||
      challenge.difficulty > MAX_POW_BITS ||
      solving === challenge.challenge ||
      (proof && proof.indexOf(challenge.challenge + ":") === 0)
    ) {
      return;
    }
    var subtle = window.crypto && window.crypto.subtle;
    if (!subtle || typeof TextEncoder !== "function") {
      return; // navigateur trop ancien ou page non sécurisée : la passerelle le dira poliment
    }
    var encoder = new TextEncoder();
    var target = challenge.challenge;
    var counter = 0;
    solving = target;
    function batch() {
      if (solving !== target) {
        return;
      }
      var tries = [];
      for (var i = 0; i < POW_BATCH; i++) {
        tries.push((counter++).toString(16));
      }
      Promise.all(
        tries.map(function (t) {
          return subtle.digest("SHA-256", encoder.encode(target + ":" + t));
        })
      ).then(
        function (digests) {
          if (solving !== target) {
            return;
          }
          for (var j = 0; j < digests.length; j++) {
            if (leadingZeroBits(new Uint8Array(digests[j])) >= challenge.difficulty) {
              proof = target + ":" + tries[j];
              solving = null;
              return;
            }
          }
          window.setTimeout(batch, 0);
        },
        function () {
          solving = null;
        }
      );
    }
    batch();
  }

  // ---------------------------------------------------------------- réseau
  function postJson(url, body) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller
      ? window.setTimeout(function () {
          controller.abort();
        }, REQUEST_TIMEOUT_MS)
      : null;
    return window
      .fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        mode: "cors",
        signal: controller ? controller.signal : undefined,
      })
      .then(
        function (res) {
          return res
            .json()
            .catch(function () {
              return null;
            })
            .then(function (data) {
              return { status: res.status, ok: res.ok, data: data };
            });
        },
        function () {
          return { status: 0, ok: false, data: null };
        }
      )
      .then(function (result) {
        if (timer) {
          window.clearTimeout(timer);
        }
        return result;
      });
  }

  /**
   * Envoie une requête. req : {text} ou {payload} ; display : texte affiché comme message de
   * l'utilisateur (null pour /greet). Renvoie une promesse de booléen (succès).
   */
  function send(req, display, options) {
    options = options || {};
    if (busy) {
      announce("Patientez, la réponse précédente est en cours.");
      return Promise.resolve(false);
    }
    busy = true;
    clearError();
    setTyping(true);
    var userItem = display ? addItem({ who: "user", text: display }) : null;
    if (userItem) {
      log.scrollTop = log.scrollHeight;
    }
    var body = { sender: senderId };
    if (typeof req.text === "string") {
      body.text = req.text;
    } else {
      body.payload = req.payload;
    }
    if (proof) {
      body.proof = proof;
    }
    return postJson(chatEndpoint, body).then(function (result) {
      busy = false;
      setTyping(false);
      var msgs = result.data && Array.isArray(result.data.messages) ? result.data.messages : null;
      if (!result.ok || !msgs) {
        if (userItem) {
          removeItem(userItem);
        }
        lastFailed = { req: req, display: display, options: options };
        var message = describeFailure(result.ok ? 502 : result.status, result.data);
        if (typeof req.text === "string") {
          // Rien n'est perdu : le texte revient dans la zone de saisie.
          if (!input.value) {
            input.value = req.text;
            updateCounter();
            saveDraft();
          }
          message += " Votre message n'est pas perdu : il est toujours dans la zone de saisie.";
        }
        showError(message, true);
        return false;
      }
      lastFailed = null;
      if (body.proof && proof === body.proof) {
        proof = null; // reçue par la passerelle
      }
      if (rememberTickets(result.data.tickets)) {
        schedulePoll(pollMs);
      }
      solveChallenge(result.data.challenge);
      var focusWasOnChoice = retireOldChoices();
      var first = null;
      var asking = null;
      var replyLang =
        typeof result.data.language === "string" && LANG_RE.test(result.data.language)
          ? result.data.language
          : null;
      msgs.forEach(function (m) {
        if (!m || typeof m !== "object") {
          return;
        }
        var text = typeof m.text === "string" ? m.text : "";
        var buttons = Array.isArray(m.buttons)
          ? m.buttons
              .filter(function (b) {
                return b && typeof b.title === "string" && typeof b.payload === "string";
              })
              .map(function (b) {
                return { title: b.title, payload: b.payload };
              })
          : [];
        if (!text && !buttons.length) {
          return;
        }
        var item = addItem({ who: "bot", text: text, buttons: buttons, lang: replyLang });
        first = first || item._node;
        if (buttons.length) {
          asking = item._node;
        }
      });
      scrollToReplies(first, asking);
      if (options.fromChoice || focusWasOnChoice) {
        // Le bouton choisi est désormais désactivé : le focus revient dans la zone de saisie au
        // clavier et à la souris ; sur un écran tactile ou étroit, pas dans la zone de saisie
        // (le clavier virtuel cacherait la question et ses boutons).
        focusAfterChoice();
      }
      if (typeof req.text === "string") {
        var typedCode = findTrackingCode(req.text);
        if (typedCode) {
          followReport(typedCode);
        }
      }
      return true;
    });
  }

  function greetIfNeeded() {
    if (transcript.length === 0 && !busy) {
      send({ payload: PAYLOAD_GREET }, null);
    }
  }

  // ---------------------------------------------------------------- saisie
  function saveDraft() {
    if (input.value) {
      set(session, KEY_DRAFT, input.value);
    } else {
      remove(session, KEY_DRAFT);
    }
  }

  // La zone de saisie grandit avec le texte (jusqu'au max-height de la feuille de style).
  function autosize() {
    input.style.height = "auto";
    input.style.height = input.scrollHeight + (input.offsetHeight - input.clientHeight) + "px";
  }

  function updateCounter() {
    autosize();
    var n = charCount(input.value);
    counter.textContent = n + " / " + MAX_CHARS + " caractères";
    var state = n > MAX_CHARS ? "over" : n >= WARN_CHARS ? "warn" : "ok";
    counter.className = "tq-counter" + (state === "ok" ? "" : " tq-counter--" + state);
    if (state !== counterState) {
      if (state === "warn") {
        announce("Il vous reste " + (MAX_CHARS - n) + " caractères.");
      } else if (state === "over") {
        announce("Votre message dépasse la limite de " + MAX_CHARS + " caractères.");
      }
      counterState = state;
    }
    input.setAttribute("aria-invalid", state === "over" ? "true" : "false");
  }

  function submitText() {
    var text = input.value.replace(/^\s+|\s+$/g, "");
    if (!text) {
      showError("Votre message est vide : écrivez quelques mots, ou choisissez une réponse proposée.", false);
      input.focus();
      return;
    }
    var n = charCount(text);
    if (n > MAX_CHARS) {
      showError(
        "Votre message fait " +
          n +
          " caractères : la limite est de " +
          MAX_CHARS +
          ". Raccourcissez-le, ou envoyez-le en plusieurs fois. Votre texte est conservé.",
        false
      );
      input.focus();
      return;
    }
    if (busy) {
      announce("Patientez, la réponse précédente est en cours.");
      return;
    }
    input.value = "";
    updateCounter();
    saveDraft();
    send({ text: text }, text);
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    submitText();
  });

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitText();
    }
  });

  input.addEventListener("input", function () {
    updateCounter();
    saveDraft();
    if (!errorBox.hidden && retryBtn.hidden) {
      clearError();
    }
  });

  retryBtn.addEventListener("click", function () {
    if (!lastFailed) {
      clearError();
      return;
    }
    var failed = lastFailed;
    if (typeof failed.req.text === "string") {
      input.focus();
    } else {
      focusComposer();
    }
    if (typeof failed.req.text === "string") {
      // On renvoie ce qui est dans la zone de saisie (l'utilisateur a pu le corriger).
      var current = input.value.replace(/^\s+|\s+$/g, "");
      if (current) {
        submitText();
        return;
      }
    }
    send(failed.req, failed.display, failed.options);
  });

  menuBtn.addEventListener("click", function () {
    send({ payload: PAYLOAD_MENU }, "Menu");
  });
  guidedBtn.addEventListener("click", function () {
    send({ payload: PAYLOAD_GUIDED }, "Mode guidé");
  });
  humanBtn.addEventListener("click", function () {
    send({ payload: PAYLOAD_HUMAN }, "Parler à un humain");
  });

  // ---------------------------------------------------------------- préférences d'affichage
  function applyPrefs() {
    root.classList.toggle("tq-large", largeText);
    root.classList.toggle("tq-contrast", highContrast);
    largeBtn.setAttribute("aria-pressed", largeText ? "true" : "false");
    contrastBtn.setAttribute("aria-pressed", highContrast ? "true" : "false");
    autosize();
  }
  largeBtn.addEventListener("click", function () {
    largeText = !largeText;
    set(local, KEY_LARGE, largeText ? "1" : "0");
    applyPrefs();
  });
  contrastBtn.addEventListener("click", function () {
    highContrast = !highContrast;
    set(local, KEY_CONTRAST, highContrast ? "1" : "0");
    applyPrefs();
  });

  // ---------------------------------------------------------------- nouvelle conversation
  function openConfirm() {
    confirmBox.hidden = false;
    confirmNo.focus();
  }
  function closeConfirm(focusBack) {
    confirmBox.hidden = true;
    if (focusBack) {
      resetBtn.focus();
    }
  }
  function newConversation() {
    senderId = newSenderId();
    set(session, KEY_SENDER, senderId);
    transcript = [];
    saveTranscript();
    // Ordinateur partagé : la personne suivante ne voit pas les nouvelles des signalements.
    remove(local, KEY_TICKETS);
    remove(local, KEY_SEEN);
    schedulePoll(0);
    remove(session, KEY_DRAFT);
    input.value = "";
    updateCounter();
    lastFailed = null;
    clearError();
    renderTranscript();
    announce("Nouvelle conversation commencée.");
    focusComposer();
    greetIfNeeded();
  }
  resetBtn.addEventListener("click", openConfirm);
  confirmNo.addEventListener("click", function () {
    closeConfirm(true);
  });
  confirmYes.addEventListener("click", function () {
    closeConfirm(false);
    if (busy) {
      announce("Patientez, la réponse précédente est en cours.");
      resetBtn.focus();
      return;
    }
    newConversation();
  });

  // ---------------------------------------------------------------- ouverture / fermeture
  var smallScreen = window.matchMedia ? window.matchMedia("(max-width: 480px)") : null;

  function isFullScreen() {
    return !inline && !!(smallScreen && smallScreen.matches);
  }

  // Dernière façon d'agir dans le widget : « touch », « pen », « mouse » ou « keyboard ».
  var lastInput = "";
  root.addEventListener(
    "pointerdown",
    function (e) {
      lastInput = e.pointerType || "mouse";
    },
    true
  );
  root.addEventListener(
    "keydown",
    function () {
      lastInput = "keyboard";
    },
    true
  );

  /** Donner le focus à la zone de saisie ouvrirait-il un clavier virtuel ? */
  function virtualKeyboardLikely() {
    if (lastInput === "keyboard") {
      return false;
    }
    if (lastInput === "touch" || lastInput === "pen") {
      return true;
    }
    var coarse = window.matchMedia ? window.matchMedia("(pointer: coarse)") : null;
    return !!((smallScreen && smallScreen.matches) || (coarse && coarse.matches));
  }

  /** Le focus dans la discussion : la zone de saisie, sauf si un clavier virtuel s'ouvrirait. */
  function focusComposer() {
    if (virtualKeyboardLikely()) {
      try {
        log.focus({ preventScroll: true });
      } catch (e) {
        log.focus();
      }
    } else {
      input.focus();
    }
  }

  function focusAfterChoice() {
    focusComposer();
  }

  function updateModality() {
    if (inline) {
      return;
    }
    if (isOpen && isFullScreen()) {
      panel.setAttribute("aria-modal", "true");
    } else {
      panel.removeAttribute("aria-modal");
    }
  }
  if (smallScreen) {
    var onChange = function () {
      updateModality();
    };
    if (smallScreen.addEventListener) {
      smallScreen.addEventListener("change", onChange);
    } else if (smallScreen.addListener) {
      smallScreen.addListener(onChange);
    }
  }

  function openPanel(moveFocus) {
    if (inline) {
      if (moveFocus) {
        focusComposer();
      }
      return;
    }
    isOpen = true;
    panel.hidden = false;
    root.classList.add("tq-is-open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.classList.remove("tq-launcher--unread");
    launcherLabel.textContent = LAUNCHER_TEXT;
    set(session, KEY_OPEN, "1");
    updateModality();
    autosize();
    log.scrollTop = log.scrollHeight;
    if (moveFocus) {
      focusComposer();
    }
    greetIfNeeded();
  }

  function closePanel() {
    if (inline || !isOpen) {
      return;
    }
    isOpen = false;
    confirmBox.hidden = true;
    panel.hidden = true;
    root.classList.remove("tq-is-open");
    launcher.setAttribute("aria-expanded", "false");
    set(session, KEY_OPEN, "0");
    updateModality();
    launcher.focus();
  }

  if (launcher) {
    launcher.addEventListener("click", function () {
      if (isOpen) {
        closePanel();
      } else {
        openPanel(true);
      }
    });
    closeBtn.addEventListener("click", closePanel);
  }

  function focusables() {
    var list = panel.querySelectorAll(
      'button, [href], textarea, input, select, [tabindex]:not([tabindex="-1"])'
    );
    return Array.prototype.filter.call(list, function (n) {
      return !n.disabled && !n.hidden && n.offsetParent !== null;
    });
  }

  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape" || e.key === "Esc") {
      if (!confirmBox.hidden) {
        e.preventDefault();
        closeConfirm(true);
        return;
      }
      if (!inline) {
        e.preventDefault();
        closePanel();
      }
      return;
    }
    if (e.key === "Tab" && isOpen && isFullScreen()) {
      // Plein écran (téléphone) : le focus reste dans la fenêtre de discussion.
      var items = focusables();
      if (!items.length) {
        return;
      }
      var firstEl = items[0];
      var lastEl = items[items.length - 1];
      if (e.shiftKey && document.activeElement === firstEl) {
        e.preventDefault();
        lastEl.focus();
      } else if (!e.shiftKey && document.activeElement === lastEl) {
        e.preventDefault();
        firstEl.focus();
      }
    }
  });

  // ---------------------------------------------------------------- démarrage
  function loadStylesheet(done) {
    var existing = document.getElementById("tq-widget-css");
    if (existing) {
      done();
      return;
    }
    var cssUrl = new URL("widget.css", scriptUrl);
    cssUrl.search = scriptUrl.search;
    var link = el("link", { id: "tq-widget-css", rel: "stylesheet", href: cssUrl.href });
    var finished = false;
    var finish = function () {
      if (!finished) {
        finished = true;
        done();
      }
    };
    link.addEventListener("load", finish);
    link.addEventListener("error", finish); // sans style, le widget reste utilisable
    window.setTimeout(finish, 4000);
    (document.head || document.documentElement).appendChild(link);
  }

  function mount() {
    applyPrefs();
    renderTranscript();
    var draft = get(session, KEY_DRAFT);
    if (draft) {
      input.value = draft;
    }
    updateCounter();
    (container || document.body).appendChild(root);
    loadStylesheet(function () {
      root.hidden = false;
      autosize();
      log.scrollTop = log.scrollHeight;
      if (inline) {
        greetIfNeeded();
      } else if (startOpen || get(session, KEY_OPEN) === "1") {
        openPanel(false);
      }
      schedulePoll(0); // les nouvelles arrivées pendant l'absence
    });
  }

  window.TranquilliteWidget = Object.freeze({
    open: function () {
      openPanel(true);
    },
    close: closePanel,
    newConversation: newConversation,
    // demander tout de suite les nouvelles des signalements suivis
    checkUpdates: function () {
      schedulePoll(0);
    },
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mount);
  } else {
    mount();
  }
})();
