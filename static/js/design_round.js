// A loop's design round: the server pushes each follow-up over the round's WebSocket
// (DesignFollowUpConsumer in interview/consumers.py) when its time comes, and the page then
// fetches the released follow-ups' fragment, the one the standalone round polls for. A dropped
// connection reconnects with ?after=<follow-ups on the page>, so none is missed.
(function () {
  "use strict";
  const RECONNECT_MS = [500, 1000, 2000, 4000, 8000];
  const box = document.querySelector("#follow-ups[data-socket]");
  if (!box || !window.htmx || !document.getElementById("follow-up-poll")) return;
  let attempts = 0, done = false, fetching = Promise.resolve();

  // The "N more to come" line carries the URL of what comes after the follow-ups it follows.
  function fetchReleased() {
    const pending = document.getElementById("follow-up-poll");
    if (!pending) return Promise.resolve();
    return htmx.ajax("GET", pending.dataset.url, { target: pending, swap: "outerHTML" });
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const shown = box.querySelectorAll("article.follow-up").length;
    const socket = new WebSocket(`${scheme}://${location.host}${box.dataset.socket}?after=${shown}`);
    socket.onopen = () => { attempts = 0; };
    socket.onmessage = (message) => {
      if (JSON.parse(message.data).pending === 0) done = true;
      fetching = fetching.then(fetchReleased).catch(() => {});
    };
    socket.onclose = () => {
      if (done) return;
      setTimeout(connect, RECONNECT_MS[Math.min(attempts++, RECONNECT_MS.length - 1)]);
    };
  }
  connect();
})();
