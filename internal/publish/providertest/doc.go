// Package providertest is what the fake providers (pushertest, ablytest,
// piesockettest) share: a Recorder of what a fake accepted that tests can wait on,
// Faults that script a fake's answers, a Server that counts requests, rejected
// answers and connections, delays answers on demand and writes a rejection, the
// Controls of those three that a fake's tests call on the fake itself, and
// HTTPError, an answer other than 200. The provider tests share Build, which makes a
// client from an edited configuration, and Concurrently, which runs publishing
// workers at once.
package providertest
