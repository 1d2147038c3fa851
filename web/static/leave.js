// The information point's way out (no third-party code; the pages work without it).
// "Leave this page" and the Escape key replace the page with a neutral site; links and the
// question form inside the information point replace the current history entry, so a whole
// visit leaves one entry behind, and leaving replaces that one too.
(function () {
  'use strict';
  var leave = document.getElementById('nrm-leave');
  if (!leave) return;
  var away = leave.getAttribute('data-leave');
  function go(event) {
    if (event) event.preventDefault();
    document.body.hidden = true;
    document.title = '';
    window.location.replace(away);
  }
  leave.addEventListener('click', go);
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape' || event.key === 'Esc') go(event);
  });
  document.addEventListener('click', function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    var link = event.target.closest ? event.target.closest('a[href^="/hulp"]') : null;
    if (!link) return;
    event.preventDefault();
    window.location.replace(link.href);
  });
  var forms = document.querySelectorAll('form[data-nrm-replace]');
  for (var i = 0; i < forms.length; i++) {
    forms[i].addEventListener('submit', function (event) {
      var form = event.currentTarget;
      var query = new URLSearchParams(new FormData(form)).toString();
      event.preventDefault();
      window.location.replace(form.action + (query ? '?' + query : ''));
    });
  }
  // Shown from the back/forward cache: hidden again if the person left from here.
  window.addEventListener('pageshow', function (event) {
    if (event.persisted) document.body.hidden = false;
  });
})();
