// htmx changes the address when the inbox is filtered or paged; the language switcher then
// brings the citizen back to that address rather than to the page as first loaded.
document.addEventListener("htmx:pushedIntoHistory", function () {
  var next = document.querySelector(".language-switcher input[name=next]");
  if (next) {
    next.value = window.location.pathname + window.location.search;
  }
});
