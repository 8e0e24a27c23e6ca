// Posts a form marked data-autosubmit as soon as the page is ready (the SAML POST binding).
// Without JavaScript the form's own "Continue" button does the same.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-autosubmit]");
  if (form) {
    form.submit();
  }
});
