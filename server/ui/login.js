// Shows the error of a refused key (the server redirects with ?error=key).
if (new URLSearchParams(location.search).get("error") === "key") {
  document.getElementById("login-error").hidden = false;
}
