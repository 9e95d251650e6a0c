// Errors in place and confirmations (issue 23 items 2-3). When the page loads, focus goes
// to the error summary or to the confirmation of what was just done, so that a screen
// reader reads it out (text that is simply in the page is not announced). A link of the
// summary moves focus to its field and shows the field's label too.
(function () {
  var target = document.querySelector('[data-focus-on-load]');
  if (target) { target.focus(); }
  var summary = document.getElementById('error-summary');
  if (!summary) { return; }
  summary.addEventListener('click', function (event) {
    var link = event.target.closest('a[href^="#"]');
    var field = link && document.getElementById(link.getAttribute('href').slice(1));
    if (!field) { return; }
    event.preventDefault();
    var label = document.querySelector('label[for="' + field.id + '"]');
    (label || field).scrollIntoView();
    field.focus({ preventScroll: true });
  });
})();
