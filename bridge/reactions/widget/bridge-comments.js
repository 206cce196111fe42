/* bridge comments widget — written by bridge next to the comments documents (docs/reactions.md).
 *
 * Include it with one element and one script tag:
 *   <div id="bridge-comments" data-src="/comments/NAME.json"></div>
 *   <script src="/comments/bridge-comments.js" defer></script>
 *
 * It reads the comments document (schema "bridge.comments/1") from the same site and shows the replies
 * threaded, with counts, avatars and links to the originals. No framework, no cookies (credentials: "omit"),
 * no request but the document and the avatars (https only; data-avatars="off" turns them off). The DOM is
 * built with createElement and textContent alone: no HTML string is ever parsed, so it runs under a strict
 * Content-Security-Policy (no inline script or style; even require-trusted-types-for 'script'). Whatever the
 * element held before (the no-JavaScript fragment) stays when the document cannot be read.
 */
(function () {
  "use strict";

  var SCHEMA = /^bridge\.comments\/1(\.\d+)?$/;
  var LINK = /https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}]/g;
  var LANGUAGE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function httpUrl(value, httpsOnly) {
    if (typeof value !== "string") return null;
    var url;
    try {
      url = new URL(value);
    } catch (e) {
      return null;
    }
    if (url.protocol === "https:" || (!httpsOnly && url.protocol === "http:")) return url.href;
    return null;
  }

  function link(href, text, className) {
    var a = el("a", className, text);
    a.href = href;
    a.rel = "nofollow noopener noreferrer ugc";
    return a;
  }

  function plural(n, one, many) {
    n = Number(n) || 0;
    return n + " " + (n === 1 ? one : many);
  }

  function countsLine(counts) {
    var parts = [plural(counts.likes, "like", "likes"), plural(counts.reposts, "repost", "reposts")];
    if (counts.quotes) parts.push(plural(counts.quotes, "quote", "quotes"));
    parts.push(plural(counts.replies, "reply", "replies"));
    return parts.join(" · ");
  }

  // The reply's text, a paragraph per line; http(s) addresses in it become links.
  function body(text) {
    var box = el("div", "bridge-comments-text");
    box.dir = "auto";
    String(text || "").split("\n").forEach(function (line) {
      if (!line) return;
      var p = el("p");
      var last = 0;
      line.replace(LINK, function (match, offset) {
        p.appendChild(document.createTextNode(line.slice(last, offset)));
        var href = httpUrl(match, false);
        p.appendChild(href ? link(href, match) : document.createTextNode(match));
        last = offset + match.length;
        return match;
      });
      p.appendChild(document.createTextNode(line.slice(last)));
      box.appendChild(p);
    });
    return box;
  }

  function when(value) {
    var date = new Date(value);
    var time = el("time", "bridge-comments-time");
    if (isNaN(date.getTime())) {
      time.textContent = String(value || "");
      return time;
    }
    time.dateTime = date.toISOString();
    time.textContent = date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
    return time;
  }

  function platformName(platform) {
    return { mastodon: "Mastodon", bluesky: "Bluesky", nostr: "Nostr", threads: "Threads" }[platform] || String(platform);
  }

  function reply(item, options) {
    var li = el("li", "bridge-comments-reply");
    if (typeof item.language === "string" && LANGUAGE.test(item.language)) li.lang = item.language;
    var article = el("article");
    var header = el("header", "bridge-comments-meta");
    var author = item.author || {};
    var avatar = options.avatars ? httpUrl(author.avatar, true) : null;
    if (avatar) {
      var img = el("img", "bridge-comments-avatar");
      img.alt = "";
      img.width = 40;
      img.height = 40;
      img.loading = "lazy";
      img.decoding = "async";
      img.referrerPolicy = "no-referrer";
      img.src = avatar;
      header.appendChild(img);
    }
    var name = el("bdi", "bridge-comments-name", author.name || author.handle || "");
    var profile = httpUrl(author.url, false);
    header.appendChild(profile ? link(profile, "", "bridge-comments-author") : el("span", "bridge-comments-author"));
    header.lastChild.appendChild(name);
    header.appendChild(document.createTextNode(" "));
    header.appendChild(el("bdi", "bridge-comments-handle", "@" + (author.handle || "")));
    header.appendChild(document.createTextNode(" "));
    var original = httpUrl(item.url, false);
    var stamp = when(item.created_at);
    if (original) {
      var a = link(original, "", "bridge-comments-permalink");
      a.appendChild(stamp);
      a.appendChild(document.createTextNode(" on " + platformName(item.platform)));
      header.appendChild(a);
    } else {
      header.appendChild(stamp);
    }
    article.appendChild(header);
    article.appendChild(body(item.text));
    li.appendChild(article);
    if (Array.isArray(item.replies) && item.replies.length) li.appendChild(list(item.replies, options));
    return li;
  }

  function list(items, options) {
    var ol = el("ol", "bridge-comments-list");
    items.forEach(function (item) {
      if (item && typeof item === "object") ol.appendChild(reply(item, options));
    });
    return ol;
  }

  function render(host, doc) {
    var options = { avatars: host.getAttribute("data-avatars") !== "off" };
    var section = el("section", "bridge-comments");
    section.setAttribute("aria-label", host.getAttribute("data-label") || "Replies from the fediverse and Bluesky");
    section.appendChild(el("h2", "bridge-comments-title", host.getAttribute("data-title") || "Replies"));
    section.appendChild(el("p", "bridge-comments-counts", countsLine(doc.counts || {})));
    var posts = (Array.isArray(doc.posts) ? doc.posts : []).filter(function (post) {
      return post && httpUrl(post.url, false);
    });
    if (posts.length) {
      var ul = el("ul", "bridge-comments-posts");
      posts.forEach(function (post) {
        var li = el("li");
        li.appendChild(link(httpUrl(post.url, false), "Reply on " + platformName(post.platform), "bridge-comments-reply-on"));
        ul.appendChild(li);
      });
      section.appendChild(ul);
    }
    var replies = Array.isArray(doc.replies) ? doc.replies : [];
    section.appendChild(replies.length ? list(replies, options) : el("p", "bridge-comments-none", "No replies yet."));
    while (host.firstChild) host.removeChild(host.firstChild);
    host.appendChild(section);
  }

  function load(host) {
    var src = host.getAttribute("data-src");
    if (!src || typeof fetch !== "function") return;
    var url;
    try {
      url = new URL(src, document.baseURI);
    } catch (e) {
      return;
    }
    if (url.origin !== window.location.origin) return; // the document comes from the writer's own site
    fetch(url.href, { credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (doc) {
        if (!doc || !SCHEMA.test(String(doc.schema))) throw new Error("not a bridge.comments/1 document");
        render(host, doc);
        host.setAttribute("data-state", "loaded");
      })
      .catch(function () {
        host.setAttribute("data-state", "failed"); // the no-JavaScript fragment, if any, stays
      });
  }

  function start() {
    var hosts = document.querySelectorAll("#bridge-comments, [data-bridge-comments]");
    Array.prototype.forEach.call(hosts, load);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
