// Entry point: drop the ?token= from the address bar (the server set the cookie) and mount the page.
import { mount } from "./app.js";

const url = new URL(location.href);
if (url.searchParams.has("token")) {
  url.searchParams.delete("token");
  history.replaceState(null, "", url.pathname + (url.search || "") + url.hash);
}
mount(document.getElementById("app"));
